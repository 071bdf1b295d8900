//! A trunk caller with a patience: it waits in the queue (hearing Switchboard's repeated 180s)
//! until an agent answers or its patience runs out, then CANCELs. SIPp cannot play this caller:
//! its response timeout restarts on every 180, so it never gives up after a set time.

use std::time::{Duration, Instant};

use crate::error::{HarnessError, HarnessResult};
use crate::uac::{sdp_offer, send_ack_for_failure, ConnectedCall, RequestSpec};
use crate::udp_peer::{Exchange, UdpPeer};

/// RFC 3261 T1 and T2: retransmission of the INVITE (until a response) and of the CANCEL.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);

/// How a caller's call ended, as the caller saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerOutcome {
    /// An agent answered (possibly just as the CANCEL went out: the 200 won the race); the
    /// caller talked and hung up.
    Answered,
    /// The caller's patience ran out: CANCEL, then the INVITE's 487.
    Abandoned,
    /// Switchboard ended the call with this final status (e.g. a queue timeout).
    Refused(u16),
}

/// The caller's side of one call: the DID to dial, who calls, how long it waits for an answer
/// and how long it talks once answered.
#[derive(Debug, Clone)]
pub struct PatientCall {
    /// The DID.
    pub did: String,
    /// The caller number (From user part).
    pub from_user: String,
    /// How long the caller waits for a 200 before it CANCELs.
    pub patience: Duration,
    /// How long the caller talks before it sends BYE.
    pub talk: Duration,
}

/// A retransmitted request: sent again at T1, 2·T1 … T2 until `stopped` is set.
struct Retransmission {
    text: String,
    next: Instant,
    interval: Duration,
    stopped: bool,
}

impl Retransmission {
    fn start(peer: &UdpPeer, text: String) -> HarnessResult<Self> {
        peer.send(&text)?;
        Ok(Retransmission {
            text,
            next: Instant::now() + T1,
            interval: T1,
            stopped: false,
        })
    }

    /// Sends again if due; returns the next instant it would be due.
    fn tick(&mut self, peer: &UdpPeer, now: Instant) -> HarnessResult<Option<Instant>> {
        if self.stopped {
            return Ok(None);
        }
        if now >= self.next {
            peer.send(&self.text)?;
            self.interval = (self.interval * 2).min(T2);
            self.next = now + self.interval;
        }
        Ok(Some(self.next))
    }
}

/// Places `call` through the peer's remote (a trunk admitted by address) and plays the caller
/// until the call ends; `timeout` bounds every wait on Switchboard.
pub fn call_with_patience(
    peer: &UdpPeer,
    call: &PatientCall,
    timeout: Duration,
) -> HarnessResult<CallerOutcome> {
    let local = peer.local_addr()?;
    let uri = format!("sip:{}@{}", call.did, peer.remote());
    let mut invite = RequestSpec::new("INVITE", &uri, &call.from_user);
    invite.body = sdp_offer(local, 40_000);
    let call_id = invite.call_id.clone();
    let started = Instant::now();
    let gives_up = started + call.patience;
    let deadline = started + call.patience + timeout;
    let mut invite_sending = Retransmission::start(peer, invite.render(local))?;
    let mut cancel_sending: Option<Retransmission> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(HarnessError::SipTimeout {
                what: format!(
                    "the end of call {call_id} (cancelled: {})",
                    cancel_sending.is_some()
                ),
                seconds: timeout.as_secs(),
            });
        }
        if cancel_sending.is_none() && now >= gives_up {
            let mut cancel = invite.clone();
            cancel.method = "CANCEL".into();
            cancel.body.clear();
            cancel_sending = Some(Retransmission::start(peer, cancel.render(local))?);
        }
        let mut wake = deadline;
        if cancel_sending.is_none() {
            wake = wake.min(gives_up);
        }
        for retransmission in [Some(&mut invite_sending), cancel_sending.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(next) = retransmission.tick(peer, now)? {
                wake = wake.min(next);
            }
        }
        let Some(message) = peer.recv(wake.saturating_duration_since(Instant::now()))? else {
            continue;
        };
        if message.header("Call-ID") != Some(call_id.as_str()) {
            continue;
        }
        let (Some(status), Some((_, method))) = (message.status(), message.cseq()) else {
            continue;
        };
        match method {
            "CANCEL" => {
                if let Some(cancel) = cancel_sending.as_mut() {
                    cancel.stopped = true;
                }
            }
            "INVITE" if status < 200 => invite_sending.stopped = true,
            "INVITE" if status < 300 => {
                let exchange = Exchange {
                    provisional: Vec::new(),
                    final_response: message,
                    unrelated: Vec::new(),
                };
                let connected = ConnectedCall::acknowledge(peer, &invite, exchange)?;
                if cancel_sending.is_none() {
                    // The talk time is the caller's behaviour being modelled, not a settling pause.
                    std::thread::sleep(call.talk);
                }
                let bye = connected.hang_up(timeout)?;
                return match bye.final_response.status() {
                    Some(200) => Ok(CallerOutcome::Answered),
                    other => Err(HarnessError::Unexpected(format!(
                        "BYE of {call_id} got {other:?}"
                    ))),
                };
            }
            "INVITE" => {
                send_ack_for_failure(peer, &invite, &message)?;
                return Ok(match (status, cancel_sending.is_some()) {
                    (487, true) => CallerOutcome::Abandoned,
                    (code, _) => CallerOutcome::Refused(code),
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

    use super::*;
    use crate::sip_message::SipMessage;

    /// A fake Switchboard: answers each request per `respond` until it sees `last_method`.
    fn fake_switch(
        respond: impl Fn(&SipMessage) -> Vec<String> + Send + 'static,
        last_method: &'static str,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<String>>) {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("loopback bind works");
        let addr = socket.local_addr().expect("bound");
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buffer = vec![0u8; 65_535];
            loop {
                let (len, from) = socket.recv_from(&mut buffer).expect("the caller sends");
                let message = SipMessage::parse(&buffer[..len]).expect("the caller sends SIP");
                let method = message.method().unwrap_or_default().to_owned();
                for reply in respond(&message) {
                    socket.send_to(reply.as_bytes(), from).expect("send works");
                }
                seen.push(method.clone());
                if method == last_method {
                    return seen;
                }
            }
        });
        (addr, handle)
    }

    /// A response to `request` with `status`, echoing its transaction headers.
    fn response(request: &SipMessage, status: &str) -> String {
        let mut text = format!("SIP/2.0 {status}\r\n");
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            for value in request.headers_named(name) {
                let value = if name == "To" && !status.starts_with("1") {
                    format!("{value};tag=switch")
                } else {
                    value.to_owned()
                };
                text.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        text.push_str("Contact: <sip:switch@127.0.0.1:9>\r\nContent-Length: 0\r\n\r\n");
        text
    }

    fn call(patience_ms: u64) -> PatientCall {
        PatientCall {
            did: "100".into(),
            from_user: "5550001".into(),
            patience: Duration::from_millis(patience_ms),
            talk: Duration::ZERO,
        }
    }

    #[test]
    fn caller_cancels_when_its_patience_runs_out_despite_repeated_ringing() {
        let (addr, switch) = fake_switch(
            |request| match request.method() {
                Some("INVITE") => vec![
                    response(request, "100 Trying"),
                    response(request, "180 Ringing"),
                    response(request, "180 Ringing"),
                ],
                Some("CANCEL") => {
                    let mut invite_487 = response(request, "487 Request Terminated");
                    invite_487 = invite_487.replace("CANCEL", "INVITE");
                    vec![response(request, "200 OK"), invite_487]
                }
                _ => Vec::new(),
            },
            "ACK",
        );
        let peer = UdpPeer::bind(0, addr).expect("loopback bind works");
        let outcome = call_with_patience(&peer, &call(300), Duration::from_secs(30));
        assert_eq!(outcome.expect("the call ends"), CallerOutcome::Abandoned);
        let seen = switch.join().expect("the fake switch ends");
        assert_eq!(seen, ["INVITE", "CANCEL", "ACK"]);
    }

    #[test]
    fn caller_answered_in_time_acks_and_hangs_up() {
        let (addr, switch) = fake_switch(
            |request| match request.method() {
                Some("INVITE") => vec![
                    response(request, "180 Ringing"),
                    response(request, "200 OK"),
                ],
                Some("BYE") => vec![response(request, "200 OK")],
                _ => Vec::new(),
            },
            "BYE",
        );
        let peer = UdpPeer::bind(0, addr).expect("loopback bind works");
        let outcome = call_with_patience(&peer, &call(60_000), Duration::from_secs(30));
        assert_eq!(outcome.expect("the call ends"), CallerOutcome::Answered);
        let seen = switch.join().expect("the fake switch ends");
        assert_eq!(seen, ["INVITE", "ACK", "BYE"]);
    }
}
