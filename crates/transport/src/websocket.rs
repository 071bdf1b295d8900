//! SIP over WebSocket (RFC 7118), for browser and WebRTC SIP clients (JsSIP, SIP.js,
//! Linphone): an HTTP upgrade that must offer the `sip` subprotocol, then one SIP message per
//! WebSocket text or binary message. `wss` is the same behind the TLS handshake of the SIP
//! TLS listener (same certificate, same reload).
//!
//! A WebSocket client cannot be reached any other way (its Via and Contact hosts are
//! `.invalid`), so the connection is the flow its registration lives on: requests to it go
//! back over this connection, and when it closes the core is told ([`Payload::Closed`]) so the
//! binding stops being offered calls. The caps, the gate, the idle timeout with registration
//! pinning and the per-message deadline are those of the other stream transports.
//!
//! tungstenite does the RFC 6455 framing: reassembling fragments, answering pings, the close
//! handshake and the size cap (the message and frame limits are `max_message_bytes`).

use crate::stream::{register, unregister, WRITE_QUEUE};
use crate::{Inbound, Inner, Payload};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use sip::{Peer, Transport};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// The WebSocket subprotocol RFC 7118 §4 registers for SIP.
pub const SUBPROTOCOL: &str = "sip";

/// The body of the 400 that refuses an upgrade without the `sip` subprotocol.
const NO_SIP_SUBPROTOCOL: &str =
    "SIP over WebSocket needs Sec-WebSocket-Protocol: sip (RFC 7118 section 4)\n";

/// Accepts `ws` connections, or `wss` ones when `tls` is given. The TLS handshake and the HTTP
/// upgrade together must finish within the header timeout, so a silent client cannot hold a
/// slot.
pub(crate) async fn accept_loop(
    inner: Arc<Inner>,
    listener: TcpListener,
    tls: Option<crate::tls::Acceptors>,
) {
    let epoch = Instant::now();
    let transport = if tls.is_some() {
        Transport::Wss
    } else {
        Transport::Ws
    };
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if !crate::stream::admit_connection(&inner, peer, transport, epoch) {
                    drop(stream);
                    continue;
                }
                let _ = stream.set_nodelay(true);
                let inner = inner.clone();
                let tls = tls.as_ref().map(crate::tls::Acceptors::get);
                tokio::spawn(async move {
                    serve(&inner, stream, peer, tls).await;
                    inner.accepted.release(peer.ip());
                });
            }
            Err(error) => {
                // EMFILE and friends: keep accepting once descriptors free up.
                tracing::warn!(%error, %transport, "WebSocket accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve(
    inner: &Inner,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let local = stream.local_addr().unwrap_or(peer);
    let deadline = Instant::now() + inner.config.limits.header_timeout;
    let clock = Arc::new(MessageClock::default());
    match tls {
        None => {
            let stream = Watched::new(stream, clock.clone());
            upgrade_and_run(inner, stream, peer, local, Transport::Ws, deadline, clock).await;
        }
        Some(acceptor) => {
            match tokio::time::timeout_at(deadline.into(), acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let stream = Watched::new(stream, clock.clone());
                    upgrade_and_run(inner, stream, peer, local, Transport::Wss, deadline, clock)
                        .await;
                }
                Ok(Err(error)) => {
                    inner
                        .stats
                        .websocket_handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, %error, "WSS: TLS handshake failed");
                }
                Err(_) => {
                    inner.stats.read_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, "WSS: TLS handshake not complete in time");
                }
            }
        }
    }
}

/// Whether the client offered the `sip` subprotocol (the header may list several, and may
/// appear more than once).
fn offers_sip(request: &Request) -> bool {
    request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case(SUBPROTOCOL))
}

/// Accepts the upgrade only with the `sip` subprotocol, which the response then selects.
/// Without it the answer is 400 with a text body saying why (RFC 7118 §4 leaves a server free
/// to refuse; a client that did not ask for SIP would not understand SIP messages anyway).
/// The error type is tungstenite's callback contract, so it cannot be boxed.
#[allow(clippy::result_large_err)]
fn select_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    if offers_sip(request) {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        return Ok(response);
    }
    let mut refusal = ErrorResponse::new(Some(NO_SIP_SUBPROTOCOL.to_owned()));
    *refusal.status_mut() = StatusCode::BAD_REQUEST;
    refusal.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Err(refusal)
}

/// The framing limits: a SIP message may not exceed `max_message_bytes`, whether sent in one
/// frame or in fragments; buffers start small because most connections are idle phones.
fn websocket_config(max_message_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes))
}

async fn upgrade_and_run<S>(
    inner: &Inner,
    stream: Watched<S>,
    peer: SocketAddr,
    local: SocketAddr,
    transport: Transport,
    deadline: Instant,
    clock: Arc<MessageClock>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = websocket_config(inner.config.max_message_bytes);
    let upgrade =
        tokio_tungstenite::accept_hdr_async_with_config(stream, select_subprotocol, Some(config));
    let ws = match tokio::time::timeout_at(deadline.into(), upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(error)) => {
            inner
                .stats
                .websocket_handshake_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, %transport, %error, "WebSocket upgrade refused or failed");
            return;
        }
        Err(_) => {
            inner.stats.read_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%peer, %transport, "WebSocket upgrade not complete in time");
            return;
        }
    };
    clock.message_done();
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let id = register(inner, peer, transport, tx);
    inner
        .stats
        .websocket_connections
        .fetch_add(1, Ordering::Relaxed);
    tracing::debug!(%peer, %transport, "WebSocket connection open");
    let source = Peer {
        transport,
        addr: peer,
    };
    run(inner, ws, source, local, rx, &clock).await;
    unregister(inner, peer, id);
    inner
        .stats
        .websocket_connections
        .fetch_sub(1, Ordering::Relaxed);
    inner.pinned.remove(&peer);
    // The flow is gone: bindings that live on it can no longer be reached.
    let closed = Inbound {
        source,
        local,
        payload: Payload::Closed,
        received: Instant::now(),
    };
    let _ = inner.inbound.send(closed).await;
}

/// Why the server ends a connection, as sent in its Close frame.
fn close_frame(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// One WebSocket connection after the upgrade: SIP messages out from the queue, SIP messages in
/// to the core, until either side closes or a limit is hit.
async fn run<S>(
    inner: &Inner,
    mut ws: WebSocketStream<Watched<S>>,
    source: Peer,
    local: SocketAddr,
    mut outgoing: mpsc::Receiver<Bytes>,
    clock: &MessageClock,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let peer = source.addr;
    let limits = &inner.config.limits;
    let message_time = limits.header_timeout + limits.body_timeout;
    let mut last_activity = Instant::now();
    loop {
        let deadline = match clock.started() {
            // A slow sender gets a deadline per message, not per byte.
            Some(started) => started + message_time,
            None => {
                let idle_end = last_activity + inner.config.idle_timeout;
                let pinned = inner.pinned.get(&peer).map(|until| *until);
                pinned.map_or(idle_end, |until| until.max(idle_end))
            }
        };
        tokio::select! {
            // A message began: go round to take its deadline.
            () = clock.started.notified(), if clock.started().is_none() => {}
            data = outgoing.recv() => {
                let Some(data) = data else { return };
                if ws.send(sip_message(data)).await.is_err() {
                    return;
                }
            }
            incoming = tokio::time::timeout_at(deadline.into(), ws.next()) => match incoming {
                Err(_) => {
                    let now = Instant::now();
                    if clock.started().is_some_and(|started| started + message_time <= now) {
                        inner.stats.read_timeouts.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(%peer, "WebSocket closed: message not complete in time");
                        let _ = ws.send(close_frame(CloseCode::Policy, "message not complete in time")).await;
                        return;
                    }
                    let pinned = inner.pinned.get(&peer).map(|until| *until);
                    let idle = clock.started().is_none()
                        && last_activity + inner.config.idle_timeout <= now
                        && pinned.is_none_or(|until| until <= now);
                    if idle {
                        let _ = ws.send(close_frame(CloseCode::Normal, "idle")).await;
                        return;
                    }
                }
                Ok(None) => return,
                Ok(Some(Ok(message))) => {
                    clock.message_done();
                    last_activity = Instant::now();
                    let data = match message {
                        Message::Text(text) => Bytes::from(text),
                        Message::Binary(data) => data,
                        // tungstenite answers pings and the close handshake itself; a close
                        // ends the stream at the next read.
                        Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_) => continue,
                    };
                    if !inner.admits(peer, source.transport) {
                        // Banned or over its rate meanwhile: the connection goes.
                        let _ = ws.send(close_frame(CloseCode::Policy, "refused")).await;
                        return;
                    }
                    let inbound = Inbound {
                        source,
                        local,
                        payload: inner.classify(data),
                        received: Instant::now(),
                    };
                    inner.deliver(inbound).await;
                }
                Ok(Some(Err(error))) => {
                    let (code, reason) = match &error {
                        WsError::Capacity(_) => (
                            CloseCode::Size,
                            format!(
                                "SIP message over {} bytes",
                                inner.config.max_message_bytes
                            ),
                        ),
                        WsError::Protocol(_) | WsError::Utf8(_) => {
                            (CloseCode::Protocol, error.to_string())
                        }
                        // The connection itself failed: nothing can be sent.
                        _ => return,
                    };
                    tracing::info!(%peer, %error, "WebSocket closed: {reason}");
                    let _ = ws.send(close_frame(code, &reason)).await;
                    return;
                }
            }
        }
    }
}

/// A SIP message as a WebSocket message: text when it is UTF-8 (what browsers expect), binary
/// otherwise (RFC 7118 §5 allows both).
fn sip_message(data: Bytes) -> Message {
    match tokio_tungstenite::tungstenite::Utf8Bytes::try_from(data.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(data),
    }
}

/// When the bytes of the message being received began to arrive, as seen below tungstenite
/// (which reassembles frames out of sight): the per-message deadline runs from there.
#[derive(Debug)]
struct MessageClock {
    base: Instant,
    /// Nanoseconds after `base` of the first byte since the last complete message, plus one;
    /// 0 while nothing is pending.
    first_byte: AtomicU64,
    /// Wakes the connection's loop when a message starts, so its deadline changes from the
    /// idle one to the per-message one.
    started: tokio::sync::Notify,
}

impl Default for MessageClock {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            first_byte: AtomicU64::new(0),
            started: tokio::sync::Notify::new(),
        }
    }
}

impl MessageClock {
    fn bytes_arrived(&self) {
        let offset = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1;
        if self
            .first_byte
            .compare_exchange(0, offset, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.started.notify_one();
        }
    }

    fn message_done(&self) {
        self.first_byte.store(0, Ordering::Release);
    }

    fn started(&self) -> Option<Instant> {
        match self.first_byte.load(Ordering::Acquire) {
            0 => None,
            offset => Some(self.base + Duration::from_nanos(offset - 1)),
        }
    }
}

/// A stream that tells a [`MessageClock`] when bytes arrive.
struct Watched<S> {
    io: S,
    clock: Arc<MessageClock>,
}

impl<S> Watched<S> {
    fn new(io: S, clock: Arc<MessageClock>) -> Self {
        Self { io, clock }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.clock.bytes_arrived();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
