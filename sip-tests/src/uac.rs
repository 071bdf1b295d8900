//! Requests and short flows the tests drive from Rust rather than SIPp: readiness probes, garbage,
//! and everything that must answer a SHA-256-first Digest challenge, which SIPp 3.6.1 cannot.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::digest::{self, Credentials, DigestAlgorithm};
use crate::error::{HarnessError, HarnessResult};
use crate::sip_message::SipMessage;
use crate::udp_peer::{Exchange, UdpPeer};

/// How long a single request may take to be answered: generous, the machine is shared.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(32);

/// A token unique within this machine for a while: Call-IDs, tags and branches.
pub fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}x{}x{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The parts of a request that vary between the flows.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// Method, e.g. `INVITE`.
    pub method: String,
    /// Request-URI.
    pub uri: String,
    /// User part of the From URI.
    pub from_user: String,
    /// From tag.
    pub from_tag: String,
    /// The To header value (with tag once the dialog has one).
    pub to: String,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number (the method is `method`).
    pub cseq: u32,
    /// Via branch (the magic cookie is added).
    pub branch: String,
    /// Extra header lines, without CRLF.
    pub extra_headers: Vec<String>,
    /// Body, empty for none.
    pub body: String,
    /// The body's Content-Type.
    pub content_type: &'static str,
    /// Transport named in Via: `UDP` or `TCP`.
    pub transport: &'static str,
}

impl RequestSpec {
    /// A fresh out-of-dialog request from `from_user` to `uri`.
    pub fn new(method: &str, uri: &str, from_user: &str) -> Self {
        RequestSpec {
            method: method.to_owned(),
            uri: uri.to_owned(),
            from_user: from_user.to_owned(),
            from_tag: unique_token(),
            to: format!("<{uri}>"),
            call_id: format!("{}@sip-tests", unique_token()),
            cseq: 1,
            branch: unique_token(),
            extra_headers: Vec::new(),
            body: String::new(),
            content_type: "application/sdp",
            transport: "UDP",
        }
    }

    /// The request as text, sent from `local`.
    pub fn render(&self, local: SocketAddr) -> String {
        let mut text = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\nMax-Forwards: 70\r\nFrom: <sip:{user}@{local}>;tag={tag}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:{user}@{local}>\r\n",
            method = self.method,
            uri = self.uri,
            transport = self.transport,
            branch = self.branch,
            user = self.from_user,
            tag = self.from_tag,
            to = self.to,
            call_id = self.call_id,
            cseq = self.cseq,
        );
        for header in &self.extra_headers {
            text.push_str(header);
            text.push_str("\r\n");
        }
        if !self.body.is_empty() {
            text.push_str(&format!("Content-Type: {}\r\n", self.content_type));
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n", self.body.len()));
        text.push_str(&self.body);
        text
    }
}

/// An SDP offer for an audio call from `addr` (no media is ever sent).
pub fn sdp_offer(addr: SocketAddr, rtp_port: u16) -> String {
    let ip = addr.ip();
    format!(
        "v=0\r\no=sip-tests 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

/// Sends one OPTIONS to the peer's remote and waits for the final response.
pub fn options(peer: &UdpPeer, timeout: Duration) -> HarnessResult<Exchange> {
    peer.request(&options_request(peer)?, timeout)
}

/// A fresh out-of-dialog OPTIONS from the peer to its remote.
pub fn options_request(peer: &UdpPeer) -> HarnessResult<String> {
    let mut spec = RequestSpec::new("OPTIONS", &format!("sip:{}", peer.remote()), "probe");
    spec.extra_headers.push("Accept: application/sdp".into());
    Ok(spec.render(peer.local_addr()?))
}

/// The two exchanges of a REGISTER with Digest authentication.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The unauthenticated REGISTER and its 401.
    pub challenge: Exchange,
    /// The REGISTER with credentials and its final response.
    pub result: Exchange,
}

/// Registers `credentials.username` with Contact = the peer's own address, answering the 401 with
/// the challenge for `algorithm`. Fails only when the exchange cannot go on (no 401, no such
/// challenge); the caller asserts on the final response.
pub fn register(
    peer: &UdpPeer,
    credentials: &Credentials<'_>,
    algorithm: DigestAlgorithm,
    expires_s: u32,
) -> HarnessResult<Registration> {
    let local = peer.local_addr()?;
    let registrar = format!("sip:{}", peer.remote());
    let aor = format!("<sip:{}@{}>", credentials.username, peer.remote());
    let mut spec = RequestSpec::new("REGISTER", &registrar, credentials.username);
    spec.to = aor;
    spec.extra_headers.push(format!("Expires: {expires_s}"));
    let challenge = peer.request(&spec.render(local), TRANSACTION_TIMEOUT)?;
    if challenge.final_response.status() != Some(401) {
        return Err(HarnessError::Unexpected(format!(
            "REGISTER without credentials got\n{}",
            challenge.final_response.to_text()
        )));
    }
    let offered = challenge.final_response.headers_named("WWW-Authenticate");
    let answer = digest::pick(&offered, algorithm)?.answer(
        credentials,
        "REGISTER",
        &registrar,
        &unique_token(),
        1,
    )?;
    spec.cseq += 1;
    spec.branch = unique_token();
    spec.extra_headers.push(format!("Authorization: {answer}"));
    let result = peer.request(&spec.render(local), TRANSACTION_TIMEOUT)?;
    Ok(Registration { challenge, result })
}

/// The exchanges of a trunk call that authenticates with a 407 challenge.
#[derive(Debug, Clone)]
pub struct AuthenticatedCall {
    /// The INVITE without credentials and its 407.
    pub challenge: Exchange,
    /// The INVITE with credentials and its final response (200 when answered).
    pub answer: Exchange,
    /// The BYE and its response, when the call was answered.
    pub bye: Option<Exchange>,
}

/// Calls `did` through the peer's remote as a trunk, answers the 407 for `algorithm`, and when the
/// call is answered, ACKs, waits `talk`, and hangs up with BYE.
pub fn authenticated_call(
    peer: &UdpPeer,
    did: &str,
    credentials: &Credentials<'_>,
    algorithm: DigestAlgorithm,
    talk: Duration,
    timeout: Duration,
) -> HarnessResult<AuthenticatedCall> {
    let sdp = sdp_offer(peer.local_addr()?, 40_000);
    let (challenge, outcome) =
        authenticated_invite(peer, did, credentials, algorithm, &sdp, timeout)?;
    let call = match outcome {
        Ok(call) => call,
        Err(answer) => {
            return Ok(AuthenticatedCall {
                challenge,
                answer,
                bye: None,
            })
        }
    };
    // The talk time only keeps the call up; nothing is asserted about it.
    std::thread::sleep(talk);
    let answer = call.answer.clone();
    let bye = call.hang_up(timeout)?;
    Ok(AuthenticatedCall {
        challenge,
        answer,
        bye: Some(bye),
    })
}

/// An INVITE to `did` with `sdp` that answers the 407 for `algorithm` as `credentials` (a phone
/// calling through Switchboard). Returns the challenge exchange, and the ACKed call when the
/// authenticated INVITE got 200, or its (ACKed) final exchange otherwise.
pub fn authenticated_invite<'p>(
    peer: &'p UdpPeer,
    did: &str,
    credentials: &Credentials<'_>,
    algorithm: DigestAlgorithm,
    sdp: &str,
    timeout: Duration,
) -> HarnessResult<(Exchange, Result<ConnectedCall<'p>, Exchange>)> {
    let local = peer.local_addr()?;
    let uri = format!("sip:{did}@{}", peer.remote());
    let mut invite = RequestSpec::new("INVITE", &uri, credentials.username);
    invite.body = sdp.to_owned();
    let challenge = peer.request(&invite.render(local), timeout)?;
    if challenge.final_response.status() != Some(407) {
        return Err(HarnessError::Unexpected(format!(
            "INVITE without credentials got\n{}",
            challenge.final_response.to_text()
        )));
    }
    send_ack_for_failure(peer, &invite, &challenge.final_response)?;

    let offered = challenge.final_response.headers_named("Proxy-Authenticate");
    let answer = digest::pick(&offered, algorithm)?.answer(
        credentials,
        "INVITE",
        &uri,
        &unique_token(),
        1,
    )?;
    invite.cseq += 1;
    invite.branch = unique_token();
    invite
        .extra_headers
        .push(format!("Proxy-Authorization: {answer}"));
    let answered = peer.request(&invite.render(local), timeout)?;
    if answered.final_response.status() != Some(200) {
        send_ack_for_failure(peer, &invite, &answered.final_response)?;
        return Ok((challenge, Err(answered)));
    }
    let call = ConnectedCall::acknowledge(peer, &invite, answered)?;
    Ok((challenge, Ok(call)))
}

/// An answered trunk call placed from Rust, up until the test hangs it up: unlike a SIPp
/// scenario with a fixed pause, the test decides when the call ends.
#[derive(Debug)]
pub struct ConnectedCall<'p> {
    peer: &'p UdpPeer,
    /// The in-dialog request template (Request-URI = remote target, To with tag).
    dialog: RequestSpec,
    /// The INVITE's exchange ending in the 200.
    pub answer: Exchange,
}

impl<'p> ConnectedCall<'p> {
    /// ACKs the 200 in `answered` (the answer to `invite`) and keeps the dialog.
    pub(crate) fn acknowledge(
        peer: &'p UdpPeer,
        invite: &RequestSpec,
        answered: Exchange,
    ) -> HarnessResult<Self> {
        Self::acknowledge_with(peer, invite, answered, "")
    }

    /// ACKs the 200 in `answered` carrying `sdp` (the answer to an offer in the 200, for an
    /// INVITE sent without one), and keeps the dialog.
    fn acknowledge_with(
        peer: &'p UdpPeer,
        invite: &RequestSpec,
        answered: Exchange,
        sdp: &str,
    ) -> HarnessResult<Self> {
        let ok = &answered.final_response;
        let target = ok
            .contact_uri()
            .ok_or_else(|| {
                HarnessError::Unexpected(format!(
                    "200 to INVITE without Contact:\n{}",
                    ok.to_text()
                ))
            })?
            .to_owned();
        let mut dialog = invite.clone();
        dialog.uri = target;
        dialog.to = ok.header("To").unwrap_or_default().to_owned();
        dialog.extra_headers.clear();
        dialog.body.clear();
        dialog.method = "ACK".into();
        dialog.branch = unique_token();
        let mut ack = dialog.clone();
        ack.body = sdp.to_owned();
        peer.send(&ack.render(peer.local_addr()?))?;
        Ok(ConnectedCall {
            peer,
            dialog,
            answer: answered,
        })
    }

    /// The call's Call-ID (the trunk leg's).
    pub fn call_id(&self) -> &str {
        &self.dialog.call_id
    }

    /// Sends a request inside the dialog (INFO, re-INVITE …) with `body` of `content_type`, and
    /// waits for its final response.
    pub fn request(
        &mut self,
        method: &str,
        content_type: &'static str,
        body: &str,
        timeout: Duration,
    ) -> HarnessResult<Exchange> {
        let mut request = self.dialog.clone();
        self.dialog.cseq += 1;
        request.cseq = self.dialog.cseq;
        request.method = method.to_owned();
        request.branch = unique_token();
        request.content_type = content_type;
        request.body = body.to_owned();
        self.peer
            .request(&request.render(self.peer.local_addr()?), timeout)
    }

    /// Sends a re-INVITE offering `sdp` (e.g. a hold) and waits for its final response; a 2xx
    /// is ACKed (RFC 3261 §13.2.2.4: same CSeq number, new transaction).
    pub fn reinvite(&mut self, sdp: &str, timeout: Duration) -> HarnessResult<Exchange> {
        let exchange = self.request("INVITE", "application/sdp", sdp, timeout)?;
        if exchange
            .final_response
            .status()
            .is_some_and(|status| (200..300).contains(&status))
        {
            let mut ack = self.dialog.clone();
            ack.method = "ACK".into();
            ack.branch = unique_token();
            ack.body.clear();
            self.peer.send(&ack.render(self.peer.local_addr()?))?;
        }
        Ok(exchange)
    }

    /// Waits until Switchboard hangs the call up: answers its BYE with 200 and returns the BYE.
    pub fn wait_for_bye(&self, timeout: Duration) -> HarnessResult<SipMessage> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Some(message) = self.peer.recv(left)? else {
                continue;
            };
            if message.method() != Some("BYE") {
                continue;
            }
            let mut ok = String::from("SIP/2.0 200 OK\r\n");
            for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
                for value in message.headers_named(name) {
                    ok.push_str(&format!("{name}: {value}\r\n"));
                }
            }
            ok.push_str("Content-Length: 0\r\n\r\n");
            self.peer.send(&ok)?;
            return Ok(message);
        }
        Err(HarnessError::Unexpected(format!(
            "no BYE from switchboard within {} s",
            timeout.as_secs()
        )))
    }

    /// Sends BYE and waits for its final response.
    pub fn hang_up(mut self, timeout: Duration) -> HarnessResult<Exchange> {
        self.dialog.method = "BYE".into();
        self.dialog.cseq += 1;
        self.dialog.branch = unique_token();
        self.peer
            .request(&self.dialog.render(self.peer.local_addr()?), timeout)
    }
}

/// Places a trunk call to `did` from caller `from_user` (no credentials: the trunk is admitted by
/// address) and waits for the answer. Anything but 200 is ACKed and returned as an error.
pub fn place_call<'p>(
    peer: &'p UdpPeer,
    did: &str,
    from_user: &str,
    timeout: Duration,
) -> HarnessResult<ConnectedCall<'p>> {
    let local = peer.local_addr()?;
    place_call_with_sdp(peer, did, from_user, &sdp_offer(local, 40_000), timeout)
}

/// [`place_call`] with the given SDP offer (e.g. pointing at a test's own RTP socket).
pub fn place_call_with_sdp<'p>(
    peer: &'p UdpPeer,
    did: &str,
    from_user: &str,
    sdp: &str,
    timeout: Duration,
) -> HarnessResult<ConnectedCall<'p>> {
    let local = peer.local_addr()?;
    let uri = format!("sip:{did}@{}", peer.remote());
    let mut invite = RequestSpec::new("INVITE", &uri, from_user);
    invite.body = sdp.to_owned();
    let answered = peer.request(&invite.render(local), timeout)?;
    if answered.final_response.status() != Some(200) {
        send_ack_for_failure(peer, &invite, &answered.final_response)?;
        return Err(HarnessError::Unexpected(format!(
            "trunk call to {did} was not answered:\n{}",
            answered.final_response.to_text()
        )));
    }
    ConnectedCall::acknowledge(peer, &invite, answered)
}

/// [`place_call_with_sdp`], returning also Switchboard's RTP address for the call (from the
/// answer's SDP).
pub fn place_media_call<'p>(
    peer: &'p UdpPeer,
    did: &str,
    sdp: &str,
    timeout: Duration,
) -> HarnessResult<(ConnectedCall<'p>, SocketAddr)> {
    let call = place_call_with_sdp(peer, did, "2000", sdp, timeout)?;
    let answer = &call.answer.final_response.body;
    let relay = crate::rtp::sdp_audio_address(answer).ok_or_else(|| {
        HarnessError::Unexpected(format!("no audio address in the answer:\n{answer}"))
    })?;
    Ok((call, relay))
}

/// Places a trunk call to `did` with an INVITE that has no SDP (a delayed offer): the 200
/// must carry Switchboard's offer, and the ACK carries `answer(offer)`. Anything but 200 is
/// ACKed and returned as an error.
pub fn place_offerless_call<'p>(
    peer: &'p UdpPeer,
    did: &str,
    answer: impl FnOnce(&str) -> String,
    timeout: Duration,
) -> HarnessResult<ConnectedCall<'p>> {
    let local = peer.local_addr()?;
    let uri = format!("sip:{did}@{}", peer.remote());
    let invite = RequestSpec::new("INVITE", &uri, "2000");
    let answered = peer.request(&invite.render(local), timeout)?;
    if answered.final_response.status() != Some(200) {
        send_ack_for_failure(peer, &invite, &answered.final_response)?;
        return Err(HarnessError::Unexpected(format!(
            "offerless call to {did} was not answered:\n{}",
            answered.final_response.to_text()
        )));
    }
    let sdp = answer(&answered.final_response.body);
    ConnectedCall::acknowledge_with(peer, &invite, answered, &sdp)
}

/// ACK for a non-2xx final response: same branch and CSeq number as the INVITE (RFC 3261 §17.1.1.3).
pub fn send_ack_for_failure(
    peer: &UdpPeer,
    invite: &RequestSpec,
    response: &SipMessage,
) -> HarnessResult<()> {
    let mut ack = invite.clone();
    ack.method = "ACK".into();
    ack.to = response.header("To").unwrap_or_default().to_owned();
    ack.extra_headers.clear();
    ack.body.clear();
    peer.send(&ack.render(peer.local_addr()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_request_parses_back_with_exact_length() {
        let local: SocketAddr = "127.0.0.1:5070".parse().expect("literal address");
        let mut spec = RequestSpec::new("INVITE", "sip:100@127.0.0.1:5060", "trunk");
        spec.body = sdp_offer(local, 4000);
        spec.extra_headers.push("X-Test: 1".into());
        let text = spec.render(local);
        let message = SipMessage::parse(text.as_bytes()).expect("own request parses");
        assert_eq!(message.method(), Some("INVITE"));
        assert_eq!(message.cseq(), Some((1, "INVITE")));
        assert_eq!(message.header("X-Test"), Some("1"));
        let length: usize = message
            .header("Content-Length")
            .and_then(|l| l.parse().ok())
            .expect("length present");
        assert_eq!(length, message.body.len());
        assert!(message.body.contains("m=audio 4000 RTP/AVP 0 8 101"));
    }

    #[test]
    fn tokens_are_unique() {
        assert_ne!(unique_token(), unique_token());
    }
}
