//! Stream transports (TCP now; TLS and WebSocket later reuse the framing and the connection
//! table): messages are framed by Content-Length (RFC 3261 §18.3), connections are reused in
//! both directions, and responses go back over the connection the request came in on.

use crate::{Inbound, Inner, Payload};
use bytes::{Buf, Bytes, BytesMut};
use sip::Peer;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Messages queued to one connection's writer before senders see it as congested.
const WRITE_QUEUE: usize = 1024;

/// A live connection's writer, as kept in the connection table.
pub(crate) struct Connection {
    id: u64,
    writer: mpsc::Sender<Bytes>,
}

pub(crate) async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let (tx, rx) = mpsc::channel(WRITE_QUEUE);
                let id = register(&inner, peer, tx);
                tokio::spawn(run(inner.clone(), stream, peer, id, rx));
            }
            Err(error) => {
                // EMFILE and friends: keep accepting once descriptors free up.
                tracing::warn!(%error, "TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

fn register(inner: &Inner, peer: SocketAddr, writer: mpsc::Sender<Bytes>) -> u64 {
    let id = inner.next_connection_id.fetch_add(1, Ordering::Relaxed);
    inner.connections.insert(peer, Connection { id, writer });
    inner.stats.connections.fetch_add(1, Ordering::Relaxed);
    id
}

fn unregister(inner: &Inner, peer: SocketAddr, id: u64) {
    // Only remove our own entry: a newer connection to the same peer may have replaced it.
    if inner
        .connections
        .remove_if(&peer, |_, c| c.id == id)
        .is_some()
    {
        inner.stats.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Drives one connection: a writer draining the queue and a reader framing messages.
async fn run(
    inner: Arc<Inner>,
    stream: TcpStream,
    peer: SocketAddr,
    id: u64,
    rx: mpsc::Receiver<Bytes>,
) {
    let local = stream.local_addr().unwrap_or(peer);
    let (reader, writer) = stream.into_split();
    let writer_task = tokio::spawn(write_loop(writer, rx));
    read_loop(&inner, reader, peer, local).await;
    unregister(&inner, peer, id);
    writer_task.abort();
}

async fn write_loop(mut writer: impl AsyncWrite + Unpin, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(data) = rx.recv().await {
        if writer.write_all(&data).await.is_err() {
            return;
        }
    }
}

async fn read_loop(
    inner: &Inner,
    mut reader: impl AsyncRead + Unpin,
    peer: SocketAddr,
    local: SocketAddr,
) {
    let mut buffer = BytesMut::with_capacity(8192);
    let idle = inner.config.idle_timeout;
    loop {
        loop {
            match next_frame(&mut buffer, inner.config.max_message_bytes) {
                Frame::Incomplete => break,
                Frame::Keepalive => {
                    // RFC 5626 §4.4.1: a CRLF pong answers a double-CRLF ping.
                    if let Some(c) = inner.connections.get(&peer) {
                        let _ = c.writer.try_send(Bytes::from_static(b"\r\n"));
                    }
                }
                Frame::Message(bytes) => {
                    let inbound = Inbound {
                        source: Peer::tcp(peer),
                        local,
                        payload: inner.classify(bytes),
                        received: std::time::Instant::now(),
                    };
                    inner.deliver(inbound, true).await;
                }
                Frame::TooLarge(head, size) => {
                    // The stream cannot be resynchronised past a message we will not read.
                    let inbound = Inbound {
                        source: Peer::tcp(peer),
                        local,
                        payload: Payload::TooLarge { bytes: head, size },
                        received: std::time::Instant::now(),
                    };
                    inner.deliver(inbound, true).await;
                    return;
                }
                Frame::Broken(bytes, error) => {
                    let inbound = Inbound {
                        source: Peer::tcp(peer),
                        local,
                        payload: Payload::Malformed { bytes, error },
                        received: std::time::Instant::now(),
                    };
                    inner.deliver(inbound, true).await;
                    return;
                }
            }
        }
        match tokio::time::timeout(idle, reader.read_buf(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return,
            Ok(Ok(_)) => {}
        }
    }
}

/// The outcome of looking for one message at the front of a stream buffer.
#[derive(Debug, PartialEq)]
enum Frame {
    Incomplete,
    Keepalive,
    Message(Bytes),
    TooLarge(Bytes, usize),
    Broken(Bytes, sip::parse::ParseError),
}

fn next_frame(buffer: &mut BytesMut, max: usize) -> Frame {
    // Leading CRLFs between messages are allowed (RFC 3261 §7.5); a CRLFCRLF alone is a ping.
    let leading = buffer
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    if leading > 0 {
        let ping = buffer.starts_with(b"\r\n\r\n");
        buffer.advance(if ping { 4 } else { leading });
        if ping {
            return Frame::Keepalive;
        }
    }
    let Some(head_end) = sip::parse::find_header_end(buffer) else {
        if buffer.len() > max {
            let size = buffer.len();
            return Frame::TooLarge(buffer.split().freeze(), size);
        }
        return Frame::Incomplete;
    };
    let body_len = match sip::parse::raw_content_length(&buffer[..head_end]) {
        Ok(Some(n)) => n,
        // RFC 3261 §18.3: Content-Length is mandatory on streams; treating a missing one as 0
        // is what most stacks do for bodiless requests.
        Ok(None) => 0,
        Err(error) => return Frame::Broken(buffer.split().freeze(), error),
    };
    let total = head_end + 4 + body_len;
    if total > max {
        let head = Bytes::copy_from_slice(&buffer[..head_end + 4]);
        buffer.clear();
        return Frame::TooLarge(head, total);
    }
    if buffer.len() < total {
        return Frame::Incomplete;
    }
    Frame::Message(buffer.split_to(total).freeze())
}

pub(crate) fn send(inner: &Arc<Inner>, to: SocketAddr, data: Bytes) {
    if let Some(connection) = inner.connections.get(&to) {
        match connection.writer.try_send(data) {
            Ok(()) => {
                inner.stats.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        return;
    }
    // No connection yet: queue the message on a new writer and connect in the background,
    // so the core never waits on a TCP handshake.
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    if tx.try_send(data).is_err() {
        return;
    }
    let id = register(inner, to, tx);
    inner.stats.sent.fetch_add(1, Ordering::Relaxed);
    let inner = inner.clone();
    tokio::spawn(async move {
        match TcpStream::connect(to).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                run(inner, stream, to, id, rx).await;
            }
            Err(error) => {
                tracing::debug!(%error, %to, "TCP connect failed");
                inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                unregister(&inner, to, id);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn frames_by_content_length_across_reads() {
        let first = message("hello");
        let second = message("");
        let mut buffer = BytesMut::new();
        buffer.extend_from_slice(&first.as_bytes()[..10]);
        assert_eq!(next_frame(&mut buffer, 65535), Frame::Incomplete);
        buffer.extend_from_slice(&first.as_bytes()[10..]);
        buffer.extend_from_slice(b"\r\n\r\n");
        buffer.extend_from_slice(second.as_bytes());
        assert_eq!(
            next_frame(&mut buffer, 65535),
            Frame::Message(Bytes::from(first))
        );
        assert_eq!(next_frame(&mut buffer, 65535), Frame::Keepalive);
        assert_eq!(
            next_frame(&mut buffer, 65535),
            Frame::Message(Bytes::from(second))
        );
        assert_eq!(next_frame(&mut buffer, 65535), Frame::Incomplete);
    }

    #[test]
    fn oversized_and_broken_frames() {
        let mut buffer = BytesMut::from(message(&"x".repeat(100)).as_bytes());
        assert!(matches!(next_frame(&mut buffer, 64), Frame::TooLarge(_, _)));
        let mut buffer =
            BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: x\r\n\r\n"[..]);
        assert!(matches!(
            next_frame(&mut buffer, 65535),
            Frame::Broken(_, _)
        ));
    }
}
