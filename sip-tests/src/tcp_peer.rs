//! One SIP request over a TCP connection, with the response framed the way RFC 3261 §18.3
//! requires on a stream: headers up to the blank line, then exactly Content-Length bytes.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, HarnessResult};
use crate::sip_message::SipMessage;

/// A TCP connection to a SIP server.
#[derive(Debug)]
pub struct TcpPeer {
    stream: TcpStream,
    /// Bytes read past the last message returned.
    pending: Vec<u8>,
}

impl TcpPeer {
    /// Connects to `remote`.
    pub fn connect(remote: SocketAddr, timeout: Duration) -> HarnessResult<Self> {
        let stream = TcpStream::connect_timeout(&remote, timeout)
            .map_err(|e| HarnessError::io(format!("connecting TCP to {remote}"), e))?;
        Ok(TcpPeer {
            stream,
            pending: Vec::new(),
        })
    }

    /// Connects to `remote` from `local_ip` (another loopback address plays another host).
    pub fn connect_from(
        local_ip: std::net::IpAddr,
        remote: SocketAddr,
        timeout: Duration,
    ) -> HarnessResult<Self> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(remote),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .map_err(|e| HarnessError::io("creating a TCP socket", e))?;
        socket
            .bind(&SocketAddr::new(local_ip, 0).into())
            .map_err(|e| HarnessError::io(format!("binding TCP {local_ip}"), e))?;
        socket
            .connect_timeout(&remote.into(), timeout)
            .map_err(|e| HarnessError::io(format!("connecting TCP to {remote}"), e))?;
        Ok(TcpPeer {
            stream: socket.into(),
            pending: Vec::new(),
        })
    }

    /// Waits up to `timeout` for the server to close the connection: `true` when it did
    /// (end of stream or reset), `false` when it was still open. Bytes that arrive are kept.
    pub fn closed_within(&mut self, timeout: Duration) -> HarnessResult<bool> {
        let deadline = Instant::now() + timeout;
        let mut buffer = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            self.stream
                .set_read_timeout(Some(left))
                .map_err(|e| HarnessError::io("setting the TCP read timeout", e))?;
            match self.stream.read(&mut buffer) {
                Ok(0) => return Ok(true),
                Ok(n) => self
                    .pending
                    .extend_from_slice(buffer.get(..n).unwrap_or_default()),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(false)
                }
                Err(_) => return Ok(true),
            }
        }
    }

    /// Writes raw bytes; an error means the server closed the connection.
    pub fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The local address of the connection (what goes into Via).
    pub fn local_addr(&self) -> HarnessResult<SocketAddr> {
        self.stream
            .local_addr()
            .map_err(|e| HarnessError::io("reading the local TCP address", e))
    }

    /// Writes `text` to the stream.
    pub fn send(&mut self, text: &str) -> HarnessResult<()> {
        self.stream
            .write_all(text.as_bytes())
            .map_err(|e| HarnessError::io("writing to the TCP connection", e))
    }

    /// Reads the next message. A message without Content-Length cannot be framed on a stream:
    /// that is an error naming the message, since the next message would be misread.
    pub fn recv(&mut self, timeout: Duration) -> HarnessResult<SipMessage> {
        let deadline = Instant::now() + timeout;
        let head_end = loop {
            if let Some(end) = find(&self.pending, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill(deadline, "the headers of a SIP message over TCP")?;
        };
        let head = SipMessage::parse(self.pending.get(..head_end).unwrap_or_default())?;
        let length: usize = match head.header("Content-Length") {
            Some(value) => value.trim().parse().map_err(|_| HarnessError::BadMessage {
                reason: "Content-Length is not a number".into(),
                text: head.to_text(),
            })?,
            None => {
                return Err(HarnessError::BadMessage {
                    reason: "no Content-Length on a stream transport (RFC 3261 §18.3, §20.14)"
                        .into(),
                    text: head.to_text(),
                })
            }
        };
        while self.pending.len() < head_end + length {
            self.fill(deadline, "the body of a SIP message over TCP")?;
        }
        let rest = self.pending.split_off(head_end + length);
        let message = std::mem::replace(&mut self.pending, rest);
        SipMessage::parse(&message)
    }

    fn fill(&mut self, deadline: Instant, what: &str) -> HarnessResult<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HarnessError::SipTimeout {
                what: what.to_owned(),
                seconds: 0,
            });
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(|e| HarnessError::io("setting the TCP read timeout", e))?;
        let mut buffer = [0u8; 8192];
        match self.stream.read(&mut buffer) {
            Ok(0) => Err(HarnessError::Unexpected(format!(
                "the server closed the TCP connection while we waited for {what}"
            ))),
            Ok(n) => {
                self.pending
                    .extend_from_slice(buffer.get(..n).unwrap_or_default());
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(HarnessError::SipTimeout {
                    what: what.to_owned(),
                    seconds: 0,
                })
            }
            Err(e) => Err(HarnessError::io("reading the TCP connection", e)),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener};

    fn serve(reply: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("loopback bind works");
        let addr = listener
            .local_addr()
            .expect("bound listener has an address");
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let _ = stream.write_all(reply);
                // Keep the connection open until the client is done reading.
                let _ = stream.read(&mut [0u8; 16]);
            }
        });
        addr
    }

    #[test]
    fn frames_back_to_back_messages_by_content_length() {
        let addr = serve(b"SIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabcSIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n");
        let mut peer = TcpPeer::connect(addr, Duration::from_secs(10)).expect("connects");
        let first = peer.recv(Duration::from_secs(10)).expect("first message");
        assert_eq!(first.status(), Some(200));
        assert_eq!(first.body, "abc");
        let second = peer.recv(Duration::from_secs(10)).expect("second message");
        assert_eq!(second.status(), Some(180));
    }

    #[test]
    fn a_message_without_content_length_is_an_error() {
        let addr = serve(b"SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n");
        let mut peer = TcpPeer::connect(addr, Duration::from_secs(10)).expect("connects");
        let error = peer
            .recv(Duration::from_secs(10))
            .expect_err("cannot be framed");
        assert!(error.to_string().contains("no Content-Length"), "{error}");
    }
}
