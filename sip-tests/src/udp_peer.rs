//! A SIP endpoint on a UDP socket, driven step by step by a test: send a request, wait for its
//! final response (retransmitting like a UAC would), collect whatever else arrives.

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, HarnessResult};
use crate::sip_message::SipMessage;

/// RFC 3261 T1: first retransmission interval for requests over UDP.
const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2: the retransmission interval never grows beyond this.
const T2: Duration = Duration::from_secs(4);
/// Largest datagram the peer reads.
const MAX_DATAGRAM: usize = 65_535;

/// A UDP socket on 127.0.0.1 talking to one remote SIP address.
#[derive(Debug)]
pub struct UdpPeer {
    socket: UdpSocket,
    remote: SocketAddr,
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// 1xx responses, in order.
    pub provisional: Vec<SipMessage>,
    /// The final (>= 200) response.
    pub final_response: SipMessage,
    /// Messages that arrived meanwhile and did not belong to this transaction.
    pub unrelated: Vec<SipMessage>,
}

impl UdpPeer {
    /// Binds 127.0.0.1:`local_port` (0 = any free port) for talking to `remote`.
    pub fn bind(local_port: u16, remote: SocketAddr) -> HarnessResult<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, local_port))
            .map_err(|e| HarnessError::io(format!("binding UDP 127.0.0.1:{local_port}"), e))?;
        Ok(UdpPeer { socket, remote })
    }

    /// Binds `ip`:`local_port` (another loopback address plays another host, e.g. an attacker
    /// on 127.0.0.2) for talking to `remote`.
    pub fn bind_on(ip: Ipv4Addr, local_port: u16, remote: SocketAddr) -> HarnessResult<Self> {
        let socket = UdpSocket::bind((ip, local_port))
            .map_err(|e| HarnessError::io(format!("binding UDP {ip}:{local_port}"), e))?;
        Ok(UdpPeer { socket, remote })
    }

    /// The address this peer sends from (what goes into Via and Contact).
    pub fn local_addr(&self) -> HarnessResult<SocketAddr> {
        self.socket
            .local_addr()
            .map_err(|e| HarnessError::io("reading the local UDP address", e))
    }

    /// The address this peer talks to.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Sends raw bytes to the remote.
    pub fn send_bytes(&self, bytes: &[u8]) -> HarnessResult<()> {
        self.socket
            .send_to(bytes, self.remote)
            .map(|_| ())
            .map_err(|e| HarnessError::io(format!("sending to {}", self.remote), e))
    }

    /// Sends a message given as text.
    pub fn send(&self, text: &str) -> HarnessResult<()> {
        self.send_bytes(text.as_bytes())
    }

    /// Waits up to `timeout` for the next datagram; `None` when none came. A datagram that is not
    /// SIP is an error: Switchboard must only ever send SIP.
    pub fn recv(&self, timeout: Duration) -> HarnessResult<Option<SipMessage>> {
        let timeout = timeout.max(Duration::from_millis(1));
        self.socket
            .set_read_timeout(Some(timeout))
            .map_err(|e| HarnessError::io("setting the UDP read timeout", e))?;
        let mut buffer = vec![0u8; MAX_DATAGRAM];
        match self.socket.recv_from(&mut buffer) {
            Ok((len, _from)) => SipMessage::parse(buffer.get(..len).unwrap_or_default()).map(Some),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(None),
            Err(e) => Err(HarnessError::io("receiving on UDP", e)),
        }
    }

    /// Sends `request` and waits up to `timeout` for its final response, retransmitting on T1
    /// doubling up to T2 until a response arrives (a provisional one stops retransmission, as for
    /// INVITE). Responses are matched by Call-ID and CSeq.
    pub fn request(&self, request: &str, timeout: Duration) -> HarnessResult<Exchange> {
        let parsed = SipMessage::parse(request.as_bytes())?;
        let call_id = parsed
            .header("Call-ID")
            .ok_or_else(|| HarnessError::Unexpected("request without Call-ID".into()))?
            .to_owned();
        let cseq = parsed
            .cseq()
            .map(|(n, m)| (n, m.to_owned()))
            .ok_or_else(|| HarnessError::Unexpected("request without a valid CSeq".into()))?;
        let deadline = Instant::now() + timeout;
        let mut interval = T1;
        let mut next_send = Instant::now();
        let mut retransmitting = true;
        let mut provisional = Vec::new();
        let mut unrelated = Vec::new();
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(HarnessError::SipTimeout {
                    what: format!(
                        "the final response to {} {} (got {} provisional, {} unrelated: {:?})",
                        cseq.0,
                        cseq.1,
                        provisional.len(),
                        unrelated.len(),
                        unrelated
                            .iter()
                            .map(|m: &SipMessage| m.start_line.clone())
                            .collect::<Vec<_>>()
                    ),
                    seconds: timeout.as_secs(),
                });
            }
            if retransmitting && now >= next_send {
                self.send(request)?;
                next_send = now + interval;
                interval = (interval * 2).min(T2);
            }
            let wait_until = if retransmitting {
                next_send.min(deadline)
            } else {
                deadline
            };
            let Some(message) = self.recv(wait_until.saturating_duration_since(Instant::now()))?
            else {
                continue;
            };
            let belongs = message.header("Call-ID") == Some(call_id.as_str())
                && message.cseq().map(|(n, m)| (n, m.to_owned())) == Some(cseq.clone())
                && message.status().is_some();
            match message.status() {
                Some(code) if belongs && code < 200 => {
                    retransmitting = false;
                    provisional.push(message);
                }
                Some(_) if belongs => {
                    return Ok(Exchange {
                        provisional,
                        final_response: message,
                        unrelated,
                    })
                }
                _ => unrelated.push(message),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str =
        "OPTIONS sip:x SIP/2.0\r\nCall-ID: c1\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n";

    fn server() -> UdpSocket {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("loopback bind works")
    }

    #[test]
    fn request_retransmits_until_answered_and_skips_unrelated() {
        let server = server();
        let server_addr = server.local_addr().expect("bound");
        let peer = UdpPeer::bind(0, server_addr).expect("loopback bind works");
        let client_addr = peer.local_addr().expect("bound");
        let responder = std::thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            // Ignore the first copy so the client must retransmit.
            let _ = server.recv_from(&mut buffer).expect("first copy");
            let _ = server.recv_from(&mut buffer).expect("retransmission");
            let replies = [
                "SIP/2.0 200 OK\r\nCall-ID: other\r\nCSeq: 7 OPTIONS\r\n\r\n",
                "SIP/2.0 100 Trying\r\nCall-ID: c1\r\nCSeq: 7 OPTIONS\r\n\r\n",
                "SIP/2.0 200 OK\r\nCall-ID: c1\r\nCSeq: 7 OPTIONS\r\n\r\n",
            ];
            for reply in replies {
                server
                    .send_to(reply.as_bytes(), client_addr)
                    .expect("send works");
            }
        });
        let exchange = peer
            .request(OPTIONS, Duration::from_secs(30))
            .expect("answered");
        responder.join().expect("responder thread ends");
        assert_eq!(exchange.final_response.status(), Some(200));
        assert_eq!(exchange.provisional.len(), 1);
        assert_eq!(exchange.unrelated.len(), 1);
    }

    #[test]
    fn request_times_out_without_answer() {
        let server = server();
        let peer = UdpPeer::bind(0, server.local_addr().expect("bound")).expect("bind works");
        let error = peer
            .request(OPTIONS, Duration::from_millis(300))
            .expect_err("nobody answers");
        assert!(matches!(error, HarnessError::SipTimeout { .. }), "{error}");
    }
}
