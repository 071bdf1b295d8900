//! Stream transports (TCP and TLS; WebSocket, in `websocket`, shares the connection table,
//! the caps and the admission here): messages are framed by Content-Length (RFC 3261 §18.3), connections are reused in
//! both directions, and responses go back over the connection the request came in on.
//! TLS is TCP with a handshake between the accept and the first read: the same caps, gate,
//! deadlines and connection table apply.

use crate::{Inbound, Inner, Payload};
use bytes::{Buf, Bytes, BytesMut};
use dashmap::DashMap;
use sip::{Peer, Transport};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Messages queued to one connection's writer before senders see it as congested.
pub(crate) const WRITE_QUEUE: usize = 1024;

/// A live connection's writer, as kept in the connection table.
pub(crate) struct Connection {
    id: u64,
    /// TCP, TLS, WS or WSS: a message for a TLS peer never goes out over a plain connection,
    /// and raw SIP never goes out over a WebSocket one (nor the other way round).
    transport: Transport,
    writer: mpsc::Sender<Bytes>,
}

/// Accepted connections by source address, for the global and per-source caps (the HTTP
/// listener uses one too).
#[derive(Debug, Default)]
pub struct AcceptedConnections {
    total: AtomicUsize,
    per_source: DashMap<IpAddr, usize>,
    /// The second (since the process's first refusal) of the last refusal logged, and the
    /// refusals not logged since: a connection flood writes one line a second, not one each.
    last_logged: AtomicU64,
    unlogged: AtomicU64,
}

/// Why an accepted connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` reached.
    GlobalCap,
    /// `max_per_source` reached for the connection's address.
    PerSourceCap,
}

impl Refusal {
    fn token(self) -> &'static str {
        match self {
            Refusal::GlobalCap => "global-cap",
            Refusal::PerSourceCap => "per-source-cap",
        }
    }
}

impl AcceptedConnections {
    /// Counts a new connection from `ip`, or says which cap it hits.
    pub fn try_acquire(&self, ip: IpAddr, limits: &crate::StreamLimits) -> Result<(), Refusal> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= limits.max_connections {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::GlobalCap);
        }
        let mut count = self.per_source.entry(ip).or_insert(0);
        if *count >= limits.max_per_source {
            drop(count);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::PerSourceCap);
        }
        *count += 1;
        Ok(())
    }

    /// A connection from `ip` closed.
    pub fn release(&self, ip: IpAddr) {
        self.total.fetch_sub(1, Ordering::AcqRel);
        self.per_source.remove_if_mut(&ip, |_, count| {
            *count = count.saturating_sub(1);
            *count == 0
        });
    }

    /// Open accepted connections from `ip`.
    #[cfg(test)]
    pub(crate) fn open_from(&self, ip: IpAddr) -> usize {
        self.per_source.get(&ip).map_or(0, |c| *c)
    }

    /// Logs a refusal in the security log format, at most once a second (`epoch` is when
    /// the listener started).
    pub fn log_refusal(&self, peer: SocketAddr, refusal: Refusal, epoch: Instant, transport: &str) {
        let second = epoch.elapsed().as_secs() + 1;
        if self.last_logged.swap(second, Ordering::AcqRel) == second {
            self.unlogged.fetch_add(1, Ordering::AcqRel);
            return;
        }
        let suppressed = self.unlogged.swap(0, Ordering::AcqRel);
        tracing::warn!(
            "security event=connection-refused src={} port={} transport={transport} reason=\"{}\" suppressed={suppressed}",
            peer.ip(),
            peer.port(),
            refusal.token()
        );
    }
}

/// Accepts TCP connections, or TLS ones when `tls` is given (the handshake must finish within
/// the header timeout, so a silent or slow client cannot hold a slot).
pub(crate) async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    tls: Option<crate::tls::Acceptors>,
) {
    let epoch = Instant::now();
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if !admit_connection(&inner, peer, transport, epoch) {
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let inner = inner.clone();
                let tls = tls.as_ref().map(crate::tls::Acceptors::get);
                tokio::spawn(async move {
                    let local = stream.local_addr().unwrap_or(peer);
                    match tls {
                        None => {
                            let (tx, rx) = mpsc::channel(WRITE_QUEUE);
                            let id = register(&inner, peer, Transport::Tcp, tx);
                            let halves = stream.into_split();
                            run(&inner, halves, peer, local, Transport::Tcp, id, rx).await;
                        }
                        Some(acceptor) => {
                            let deadline = inner.config.limits.header_timeout;
                            match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => {
                                    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
                                    let id = register(&inner, peer, Transport::Tls, tx);
                                    // Verified in the handshake against the client CAs.
                                    let leaf = stream.get_ref().1.peer_certificates();
                                    if let Some(leaf) = leaf.and_then(<[_]>::first) {
                                        inner.client_certificates.insert(
                                            peer,
                                            id,
                                            crate::ClientCertificate::new(
                                                leaf.clone().into_owned(),
                                            ),
                                        );
                                    }
                                    let halves = tokio::io::split(stream);
                                    run(&inner, halves, peer, local, Transport::Tls, id, rx).await;
                                }
                                Ok(Err(error)) => {
                                    tracing::info!(%peer, %error, "TLS handshake failed");
                                }
                                Err(_) => {
                                    inner.stats.read_timeouts.fetch_add(1, Ordering::Relaxed);
                                    tracing::info!(%peer, "TLS handshake not complete in time");
                                }
                            }
                        }
                    }
                    inner.accepted.release(peer.ip());
                });
            }
            Err(error) => {
                // EMFILE and friends: keep accepting once descriptors free up.
                tracing::warn!(%error, %transport, "stream accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Whether an accepted connection from `peer` may stay: the gate lets it in and no cap is
/// reached (a refusal is counted and logged). On `true` the caller releases the slot when the
/// connection ends.
pub(crate) fn admit_connection(
    inner: &Inner,
    peer: SocketAddr,
    transport: Transport,
    epoch: Instant,
) -> bool {
    if !inner.admits(peer, transport) {
        return false;
    }
    if let Err(refusal) = inner.accepted.try_acquire(peer.ip(), &inner.config.limits) {
        // Closed at once (by the caller dropping the stream): existing connections and calls
        // are never touched.
        inner
            .stats
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        inner
            .accepted
            .log_refusal(peer, refusal, epoch, transport.via_token());
        return false;
    }
    true
}

pub(crate) fn register(
    inner: &Inner,
    peer: SocketAddr,
    transport: Transport,
    writer: mpsc::Sender<Bytes>,
) -> u64 {
    let id = inner.next_connection_id.fetch_add(1, Ordering::Relaxed);
    let connection = Connection {
        id,
        transport,
        writer,
    };
    // A connection from the same address replaces the old entry; the old one still closes
    // on its own (end of stream or idle), and removes only its own entry then.
    if inner.connections.insert(peer, connection).is_some() {
        inner.stats.connections.fetch_sub(1, Ordering::Relaxed);
    }
    inner.stats.connections.fetch_add(1, Ordering::Relaxed);
    id
}

pub(crate) fn unregister(inner: &Inner, peer: SocketAddr, id: u64) {
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
/// (TCP streams are split into owned halves without a lock; a TLS stream's halves share one.)
/// Returns the read error that ended the connection before the peer sent a single byte, if
/// that is how it ended (see [`refused_after_handshake`]).
async fn run<R, W>(
    inner: &Inner,
    (reader, writer): (R, W),
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    id: u64,
    rx: mpsc::Receiver<Bytes>,
) -> Option<std::io::Error>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let writer_task = tokio::spawn(write_loop(writer, rx));
    let first_read_failed = read_loop(
        inner,
        reader,
        Peer {
            transport,
            addr: peer,
        },
        local,
    )
    .await;
    unregister(inner, peer, id);
    inner.client_certificates.remove(peer, id);
    writer_task.abort();
    inner.pinned.remove(&peer);
    first_read_failed
}

async fn write_loop(mut writer: impl AsyncWrite + Unpin, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(data) = rx.recv().await {
        // TLS buffers records: flush so each message leaves now, not when the buffer fills.
        if writer.write_all(&data).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
}

async fn read_loop(
    inner: &Inner,
    mut reader: impl AsyncRead + Unpin,
    source: Peer,
    local: SocketAddr,
) -> Option<std::io::Error> {
    let mut heard_from_peer = false;
    let peer = source.addr;
    let mut buffer = BytesMut::with_capacity(8192);
    let limits = &inner.config.limits;
    let mut last_activity = Instant::now();
    // When the message at the front of the buffer began, and when its header was complete.
    let mut message_started: Option<Instant> = None;
    let mut header_done: Option<Instant> = None;
    loop {
        loop {
            let frame = next_frame(&mut buffer, inner.config.max_message_bytes);
            if !matches!(frame, Frame::Incomplete) {
                message_started = None;
                header_done = None;
            }
            match frame {
                Frame::Incomplete => break,
                Frame::Keepalive => {
                    // RFC 5626 §4.4.1: a CRLF pong answers a double-CRLF ping.
                    if let Some(c) = inner.connections.get(&peer) {
                        let _ = c.writer.try_send(Bytes::from_static(b"\r\n"));
                    }
                }
                Frame::Message(_) if !inner.admits(peer, source.transport) => {
                    // Banned or over its rate meanwhile: the connection goes.
                    return None;
                }
                Frame::Message(bytes) => {
                    let inbound = Inbound {
                        source,
                        local,
                        payload: inner.classify(bytes),
                        received: std::time::Instant::now(),
                    };
                    inner.deliver(inbound).await;
                }
                Frame::TooLarge(head, size) => {
                    // The stream cannot be resynchronised past a message we will not read.
                    let inbound = Inbound {
                        source,
                        local,
                        payload: Payload::TooLarge { bytes: head, size },
                        received: std::time::Instant::now(),
                    };
                    inner.deliver(inbound).await;
                    return None;
                }
                Frame::Broken(bytes, error) => {
                    let inbound = Inbound {
                        source,
                        local,
                        payload: Payload::Malformed { bytes, error },
                        received: std::time::Instant::now(),
                    };
                    inner.deliver(inbound).await;
                    return None;
                }
            }
        }
        let now = Instant::now();
        if !buffer.is_empty() {
            message_started.get_or_insert(now);
            if header_done.is_none() && sip::parse::find_header_end(&buffer).is_some() {
                header_done = Some(now);
            }
        }
        let deadline = match (message_started, header_done) {
            // A slow sender (slowloris) gets a deadline per message, not per byte.
            (Some(_), Some(header)) => header + limits.body_timeout,
            (Some(start), None) => start + limits.header_timeout,
            (None, _) => {
                let idle_end = last_activity + inner.config.idle_timeout;
                let pinned = inner.pinned.get(&peer).map(|until| *until);
                pinned.map_or(idle_end, |until| until.max(idle_end))
            }
        };
        match tokio::time::timeout_at(deadline.into(), reader.read_buf(&mut buffer)).await {
            Ok(Ok(0)) => return None,
            Ok(Err(error)) => return (!heard_from_peer).then_some(error),
            Ok(Ok(_)) => {
                heard_from_peer = true;
                last_activity = Instant::now();
            }
            Err(_) => {
                if message_started.is_some() {
                    inner.stats.read_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, "stream connection closed: message not complete in time");
                    return None;
                }
                // Idle: closed unless a registration pinned it meanwhile.
                let pinned = inner.pinned.get(&peer).map(|until| *until);
                if pinned.is_none_or(|until| until <= Instant::now()) {
                    return None;
                }
            }
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

/// Sends over the WS or WSS connection to `to`, which must exist (the peer connected to us: a
/// phone registered over it); a WebSocket client cannot be connected to (RFC 7118 §5).
pub(crate) fn send_existing(inner: &Arc<Inner>, to: SocketAddr, transport: Transport, data: Bytes) {
    let Some(connection) = inner
        .connections
        .get(&to)
        .filter(|c| c.transport == transport)
    else {
        tracing::debug!(%to, %transport, "no connection of this transport to the peer; message dropped");
        inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    match connection.writer.try_send(data) {
        Ok(()) => inner.stats.sent.fetch_add(1, Ordering::Relaxed),
        Err(_) => inner.stats.send_errors.fetch_add(1, Ordering::Relaxed),
    };
}

/// Sends over a TLS connection: the one open to `to`, else the one open to its route's
/// address (a phone that came back over a connection we opened), else a new one opened in
/// the background as the route says (see [`crate::TlsTarget`]). A new connection is counted
/// against the connection caps like an accepted one, and must be connected and through its
/// handshake within the header timeout; a failure is counted, logged and reported to the core
/// ([`Payload::ConnectFailed`]): the messages queued for it are lost, and the transactions
/// that sent them fail at once.
pub(crate) fn send_tls(inner: &Arc<Inner>, to: SocketAddr, data: Bytes) {
    let target = inner
        .tls_routes
        .get(&to)
        .map(|route| route.clone())
        .unwrap_or_else(|| crate::TlsTarget::by_address(to));
    for addr in [to, target.connect] {
        if let Some(connection) = inner
            .connections
            .get(&addr)
            .filter(|c| c.transport == Transport::Tls)
        {
            match connection.writer.try_send(data) {
                Ok(()) => inner.stats.sent.fetch_add(1, Ordering::Relaxed),
                Err(_) => inner.stats.send_errors.fetch_add(1, Ordering::Relaxed),
            };
            return;
        }
    }
    let Some(connector) = inner.config.tls_connector.clone() else {
        tracing::debug!(%to, "no TLS connection to the peer and no TLS client configured; message dropped");
        inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let connect = target.connect;
    let name = match crate::tls_client::server_name(&target.server_name) {
        Ok(name) => name,
        Err(error) => return log_connect_failure(inner, to, connect, &target, &error.to_string()),
    };
    if let Err(refusal) = inner
        .accepted
        .try_acquire(connect.ip(), &inner.config.limits)
    {
        inner
            .stats
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        return log_connect_failure(inner, to, connect, &target, refusal.token());
    }
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    if tx.try_send(data).is_err() {
        inner.accepted.release(connect.ip());
        return;
    }
    let id = register(inner, connect, Transport::Tls, tx);
    inner.stats.sent.fetch_add(1, Ordering::Relaxed);
    let streams = inner.streams.clone();
    let inner = inner.clone();
    streams.spawn(async move {
        let handshake = async {
            let stream = TcpStream::connect(connect).await?;
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().unwrap_or(connect);
            let stream = connector
                .connector(target.verify)
                .connect(name, stream)
                .await?;
            Ok::<_, std::io::Error>((stream, local))
        };
        match tokio::time::timeout(inner.config.limits.header_timeout, handshake).await {
            Ok(Ok((stream, local))) => {
                tracing::info!(to = %connect, name = %target.server_name, verify = target.verify, "outgoing TLS connection open");
                let halves = tokio::io::split(stream);
                let first_read_failed =
                    run(&inner, halves, connect, local, Transport::Tls, id, rx).await;
                if let Some(alert) = first_read_failed.as_ref().and_then(refused_after_handshake) {
                    let reason = format!("the server refused the handshake: alert {alert:?}");
                    log_connect_failure(&inner, to, connect, &target, &reason);
                }
            }
            Ok(Err(error)) => {
                unregister(&inner, connect, id);
                log_connect_failure(&inner, to, connect, &target, &error.to_string());
            }
            Err(_) => {
                unregister(&inner, connect, id);
                log_connect_failure(&inner, to, connect, &target, "not connected in time");
            }
        }
        inner.accepted.release(connect.ip());
    });
}

/// The TLS alert that ended a connection before the peer sent anything. In TLS 1.3 the
/// client's side of the handshake is done before the server has checked the client's
/// certificate, so a server requiring one (mutual TLS) that got none, or one it does not
/// trust, says so with an alert on the first read: for the sender that is a failed handshake
/// like any other, and the messages it wrote are lost.
fn refused_after_handshake(error: &std::io::Error) -> Option<rustls::AlertDescription> {
    match error.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(alert) => Some(*alert),
        _ => None,
    }
}

fn log_connect_failure(
    inner: &Arc<Inner>,
    to: SocketAddr,
    connect: SocketAddr,
    target: &crate::TlsTarget,
    reason: &str,
) {
    inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
    inner
        .stats
        .tls_connect_failures
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        to = %connect,
        name = %target.server_name,
        verify = target.verify,
        reason,
        "outgoing TLS connection failed"
    );
    report_connect_failure(inner, Peer::tls(to), reason);
}

/// Tells the core that the connection to `destination` (as the core addressed it) could not
/// be opened, so the transactions waiting on it fail now instead of at Timer B. Sent from a
/// task of its own: the caller may be the core's own send path, which must not wait on the
/// core's queue.
fn report_connect_failure(inner: &Arc<Inner>, destination: Peer, reason: &str) {
    let failed = Inbound {
        source: destination,
        local: SocketAddr::from(([0, 0, 0, 0], 0)),
        payload: Payload::ConnectFailed {
            reason: reason.to_owned(),
        },
        received: Instant::now(),
    };
    let streams = inner.streams.clone();
    let inner = inner.clone();
    streams.spawn(async move {
        let _ = inner.inbound.send(failed).await;
    });
}

pub(crate) fn send(inner: &Arc<Inner>, to: SocketAddr, data: Bytes) {
    // Any byte-stream connection to the peer will do, a TLS one too (never the other way
    // round: see `send_existing`); opening a TCP connection beside it would replace its table
    // entry. A WebSocket connection needs framing: a message for it must say WS or WSS.
    if let Some(connection) = inner.connections.get(&to) {
        if matches!(connection.transport, Transport::Ws | Transport::Wss) {
            tracing::debug!(%to, "TCP message for a WebSocket peer; dropped");
            inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
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
    let id = register(inner, to, Transport::Tcp, tx);
    inner.stats.sent.fetch_add(1, Ordering::Relaxed);
    let streams = inner.streams.clone();
    let inner = inner.clone();
    streams.spawn(async move {
        match TcpStream::connect(to).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or(to);
                run(
                    &inner,
                    stream.into_split(),
                    to,
                    local,
                    Transport::Tcp,
                    id,
                    rx,
                )
                .await;
            }
            Err(error) => {
                tracing::warn!(%error, %to, "outgoing TCP connection failed");
                inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                unregister(&inner, to, id);
                report_connect_failure(&inner, Peer::tcp(to), &error.to_string());
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
    fn connection_caps_per_source_and_in_all() {
        let limits = crate::StreamLimits {
            max_connections: 3,
            max_per_source: 2,
            ..crate::StreamLimits::default()
        };
        let accepted = AcceptedConnections::default();
        let attacker = IpAddr::from([127, 0, 0, 2]);
        let trunk = IpAddr::from([127, 0, 0, 1]);
        assert_eq!(accepted.try_acquire(attacker, &limits), Ok(()));
        assert_eq!(accepted.try_acquire(attacker, &limits), Ok(()));
        assert_eq!(
            accepted.try_acquire(attacker, &limits),
            Err(Refusal::PerSourceCap)
        );
        assert_eq!(accepted.try_acquire(trunk, &limits), Ok(()));
        assert_eq!(
            accepted.try_acquire(IpAddr::from([127, 0, 0, 3]), &limits),
            Err(Refusal::GlobalCap)
        );
        accepted.release(attacker);
        accepted.release(attacker);
        assert_eq!(accepted.open_from(attacker), 0);
        assert_eq!(accepted.try_acquire(attacker, &limits), Ok(()));
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
