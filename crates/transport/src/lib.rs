//! tokio transports for Switchboard: UDP and TCP listeners that frame and parse SIP and hand
//! each message to the sans-IO core over a channel, and a non-blocking `send` for what the
//! core wants transmitted.
//!
//! Parsing happens here, on the receiving task, so the single core task spends its time on
//! call state rather than on bytes. TLS is one more stream listener (a handshake in front of
//! the same framing); WebSocket (RFC 7118, in [`websocket`]) plugs in the same way: a stream
//! transport delivers framed messages as [`Inbound`] and registers a writer in the connection
//! table (see [`stream`]).

mod client_certificates;
mod stream;
mod tls;
mod tls_client;
mod udp;
pub mod websocket;

pub use client_certificates::{ClientCertificate, ClientCertificates};
pub use stream::{AcceptedConnections, Refusal};
pub use tls::{client_roots_from_pem_file, ServerIdentity, TlsError, TlsIdentity};
pub use tls_client::{TlsConnector, TlsTarget};

use bytes::Bytes;
use dashmap::DashMap;
use sip::parse::ParseError;
use sip::rsip::SipMessage;
use sip::{Peer, Transmit, Transport};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What the transports deliver to the core.
#[derive(Debug)]
pub struct Inbound {
    /// Who sent it.
    pub source: Peer,
    /// The local address it arrived on.
    pub local: SocketAddr,
    /// The message, or why it could not be read.
    pub payload: Payload,
    /// When it was read off the socket: the core measures its queueing delay from this to
    /// shed new calls when it falls behind.
    pub received: std::time::Instant,
}

/// A received message or the reason it was refused.
#[derive(Debug)]
pub enum Payload {
    /// A message that parsed and passed the basic checks.
    Message(SipMessage),
    /// Bytes that did not parse; the core answers 400 where it can address a response.
    Malformed {
        /// The raw bytes (for a best-effort error response).
        bytes: Bytes,
        /// What was wrong.
        error: ParseError,
    },
    /// A message over the size limit; the core answers 513 where it can.
    TooLarge {
        /// The raw bytes received (a stream transport passes only the header part).
        bytes: Bytes,
        /// Its size in bytes.
        size: usize,
    },
    /// The WebSocket connection from `source` ended (RFC 7118 §5): registrations that live on
    /// it can no longer be reached.
    Closed,
    /// A TCP or TLS connection Switchboard opened to `source` could not be opened (refused,
    /// unreachable, not in time, a refused certificate, over the connection caps): the
    /// messages queued for it are lost, so the client transactions waiting on that
    /// destination should fail now (RFC 3261 §17.1.4) rather than at Timer B.
    ConnectFailed {
        /// Why, for the log.
        reason: String,
    },
}

/// Decides, before anything is parsed or queued for the core, whether a source may be heard
/// at all (bans and per-source rate limits), so a flood costs a table lookup per message
/// rather than a parse and a place in the core's queue.
pub trait SourceGate: Send + Sync {
    /// `false` drops the datagram, stream message or new connection from `source` unread.
    fn admit(&self, source: SocketAddr, transport: Transport) -> bool;
}

/// Listener and limit settings.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// UDP addresses to bind.
    pub udp: Vec<SocketAddr>,
    /// TCP addresses to listen on.
    pub tcp: Vec<SocketAddr>,
    /// TLS addresses to listen on; needs `tls_identity`.
    pub tls: Vec<SocketAddr>,
    /// SIP over WebSocket (RFC 7118) addresses to listen on.
    pub ws: Vec<SocketAddr>,
    /// SIP over secure WebSocket addresses; need `tls_identity` (the TLS listeners' certificate).
    pub wss: Vec<SocketAddr>,
    /// The certificate TLS and WSS listeners present (replaceable while running: see
    /// [`ServerIdentity::replace`]).
    pub tls_identity: Option<Arc<ServerIdentity>>,
    /// CAs a TLS client certificate must chain to (mutual TLS); `None` asks for none.
    /// Clients without a certificate are still accepted; one with a certificate that does
    /// not chain fails the handshake.
    pub tls_client_roots: Option<Arc<rustls::RootCertStore>>,
    /// Opens outgoing TLS connections (to TLS gateways, to phones whose registration
    /// connection dropped); `None`: a TLS destination without an open connection is dropped.
    pub tls_connector: Option<Arc<TlsConnector>>,
    /// Largest message accepted; larger ones are answered 513.
    pub max_message_bytes: usize,
    /// A TCP connection with no traffic for this long is closed (unless pinned by a
    /// registration binding: see [`Transports::keep_connection`]).
    pub idle_timeout: Duration,
    /// Limits on accepted stream connections.
    pub limits: StreamLimits,
}

impl TransportConfig {
    /// Nothing to listen on, no TLS, the default stream limits: a base to name listeners (or a
    /// TLS connector) on with struct update syntax, as the transports' own tests do. A node
    /// builds the whole struct from its configuration instead.
    pub fn without_listeners(max_message_bytes: usize, idle_timeout: Duration) -> TransportConfig {
        TransportConfig {
            udp: Vec::new(),
            tcp: Vec::new(),
            tls: Vec::new(),
            ws: Vec::new(),
            wss: Vec::new(),
            tls_identity: None,
            tls_client_roots: None,
            tls_connector: None,
            max_message_bytes,
            idle_timeout,
            limits: StreamLimits::default(),
        }
    }
}

/// Caps and read deadlines for accepted stream connections, so idle or slow connections
/// cannot exhaust file descriptors (the rest of the process needs them for RTP and CDRs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLimits {
    /// Accepted connections open at once; past it a new one is closed at once.
    pub max_connections: usize,
    /// Accepted connections open at once from one IP address.
    pub max_per_source: usize,
    /// A message's header must be complete this long after its first byte.
    pub header_timeout: Duration,
    /// A message's body must be complete this long after its header.
    pub body_timeout: Duration,
}

impl Default for StreamLimits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_per_source: 64,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters the metrics exporter reads.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Datagrams or stream messages received.
    pub received: AtomicU64,
    /// Messages handed to the socket for sending.
    pub sent: AtomicU64,
    /// Sends that failed (unreachable, connection refused …).
    pub send_errors: AtomicU64,
    /// Inbound messages dropped because the core's queue was full (overload).
    pub dropped_overload: AtomicU64,
    /// Currently open stream connections.
    pub connections: AtomicU64,
    /// Accepted connections closed at once because a cap was reached.
    pub connections_refused: AtomicU64,
    /// Connections closed because a header or body did not arrive in time.
    pub read_timeouts: AtomicU64,
    /// Outgoing TLS connections that failed: refused, timed out, or a certificate the
    /// verifier refused (each also counted in `send_errors`).
    pub tls_connect_failures: AtomicU64,
    /// Currently open WebSocket (ws and wss) connections, also counted in `connections`.
    pub websocket_connections: AtomicU64,
    /// WebSocket connections whose TLS handshake or HTTP upgrade failed or was refused (no
    /// `sip` subprotocol, not a WebSocket request).
    pub websocket_handshake_failures: AtomicU64,
}

/// Shared state behind a [`Transports`] handle.
struct Inner {
    udp: Vec<udp::UdpEndpoint>,
    tcp_local: Vec<SocketAddr>,
    tls_local: Vec<SocketAddr>,
    ws_local: Vec<SocketAddr>,
    wss_local: Vec<SocketAddr>,
    connections: DashMap<SocketAddr, stream::Connection>,
    inbound: mpsc::Sender<Inbound>,
    config: TransportConfig,
    stats: TransportStats,
    next_connection_id: AtomicU64,
    /// Accepted connections per source IP (and their total), for the caps.
    accepted: stream::AcceptedConnections,
    /// Connections kept open past the idle timeout until the given instant, because a
    /// registration binding lives on them.
    pinned: DashMap<SocketAddr, std::time::Instant>,
    gate: Option<Arc<dyn SourceGate>>,
    /// Verified client certificates of open TLS connections.
    client_certificates: ClientCertificates,
    /// Where outgoing TLS connections for a destination go and what they verify.
    tls_routes: DashMap<SocketAddr, TlsTarget>,
    /// What the TLS and WSS listeners' handshakes use (replaced when client CAs are reloaded).
    acceptors: Option<tls::Acceptors>,
    /// The runtime the stream transports run on. Connections a send opens are spawned here,
    /// not on the sender's runtime: call control sends from a thread of its own (see
    /// [`Transports::start_placed`]), and a connection's I/O must not run there.
    streams: tokio::runtime::Handle,
}

/// A cheap-to-clone handle on the running transports.
#[derive(Clone)]
pub struct Transports {
    inner: Arc<Inner>,
}

impl Transports {
    /// Binds every configured listener and starts receiving. Messages go to `inbound`.
    pub async fn start(
        config: TransportConfig,
        inbound: mpsc::Sender<Inbound>,
    ) -> std::io::Result<Self> {
        Self::start_gated(config, inbound, None).await
    }

    /// Like [`Transports::start`], with `gate` consulted for every message and connection
    /// before it is parsed.
    pub async fn start_gated(
        config: TransportConfig,
        inbound: mpsc::Sender<Inbound>,
        gate: Option<Arc<dyn SourceGate>>,
    ) -> std::io::Result<Self> {
        Self::start_placed(config, inbound, gate, tokio::runtime::Handle::current()).await
    }

    /// Like [`Transports::start_gated`], with the UDP sockets registered with, and read on,
    /// `udp_runtime` — the runtime whose task takes the messages from `inbound`. A UDP
    /// message is then received, parsed and handled on one thread, with no hand-over between
    /// threads (a sixth of a call's CPU, docs/scaling.md); the stream transports stay on the
    /// runtime this is called on.
    pub async fn start_placed(
        config: TransportConfig,
        inbound: mpsc::Sender<Inbound>,
        gate: Option<Arc<dyn SourceGate>>,
        udp_runtime: tokio::runtime::Handle,
    ) -> std::io::Result<Self> {
        let mut udp = Vec::new();
        for addr in &config.udp {
            udp.push(udp::bind(*addr, &udp_runtime)?);
        }
        let mut listeners = Vec::new();
        for addr in &config.tcp {
            listeners.push(tokio::net::TcpListener::bind(addr).await?);
        }
        let tcp_local = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<std::io::Result<Vec<_>>>()?;
        let needs_tls = !config.tls.is_empty() || !config.wss.is_empty();
        let tls_acceptor = match (&config.tls_identity, !needs_tls) {
            (_, true) => None,
            (Some(identity), false) => Some(
                tls::Acceptors::new(identity.clone(), config.tls_client_roots.clone())
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            ),
            (None, false) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "TLS and WSS listeners need a certificate",
                ))
            }
        };
        let mut tls_listeners = Vec::new();
        for addr in &config.tls {
            tls_listeners.push(tokio::net::TcpListener::bind(addr).await?);
        }
        let tls_local = tls_listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<std::io::Result<Vec<_>>>()?;
        let (ws_listeners, ws_local) = bind_streams(&config.ws).await?;
        let (wss_listeners, wss_local) = bind_streams(&config.wss).await?;
        let inner = Arc::new(Inner {
            udp,
            tcp_local,
            tls_local,
            ws_local,
            wss_local,
            connections: DashMap::new(),
            inbound,
            config,
            stats: TransportStats::default(),
            next_connection_id: AtomicU64::new(1),
            accepted: stream::AcceptedConnections::default(),
            pinned: DashMap::new(),
            gate,
            client_certificates: ClientCertificates::default(),
            tls_routes: DashMap::new(),
            acceptors: tls_acceptor.clone(),
            streams: tokio::runtime::Handle::current(),
        });
        for endpoint in &inner.udp {
            udp_runtime.spawn(udp::receive_loop(
                inner.clone(),
                endpoint.socket.clone(),
                endpoint.local,
            ));
        }
        for listener in listeners {
            tokio::spawn(stream::accept_loop(inner.clone(), listener, None));
        }
        for listener in tls_listeners {
            tokio::spawn(stream::accept_loop(
                inner.clone(),
                listener,
                tls_acceptor.clone(),
            ));
        }
        for listener in ws_listeners {
            tokio::spawn(websocket::accept_loop(inner.clone(), listener, None));
        }
        for listener in wss_listeners {
            tokio::spawn(websocket::accept_loop(
                inner.clone(),
                listener,
                tls_acceptor.clone(),
            ));
        }
        Ok(Self { inner })
    }

    /// Sends without waiting. UDP goes straight to the socket (or to a task when the socket
    /// buffer is full); TCP goes to the connection's writer, opening one if needed; TLS goes
    /// to the open connection, or to one opened as its [`TlsTarget`] says (see
    /// [`Transports::route_tls`]); WS and WSS go to the connection the peer opened (a
    /// WebSocket client cannot be connected to).
    pub fn send(&self, transmit: Transmit) {
        match transmit.peer.transport {
            Transport::Udp => udp::send(&self.inner, transmit.peer.addr, transmit.data),
            Transport::Tcp => stream::send(&self.inner, transmit.peer.addr, transmit.data),
            Transport::Tls => stream::send_tls(&self.inner, transmit.peer.addr, transmit.data),
            transport @ (Transport::Ws | Transport::Wss) => {
                stream::send_existing(&self.inner, transmit.peer.addr, transport, transmit.data)
            }
        }
    }

    /// Keeps the stream connection to `peer` open past the idle timeout until `until` (a
    /// registration binding lives on it: requests to the phone must reach it over the same
    /// connection, RFC 5626 / Kamailio's tcp_connection_lifetime). `None` unpins.
    pub fn keep_connection(&self, peer: SocketAddr, until: Option<std::time::Instant>) {
        match until {
            Some(until) => {
                self.inner.pinned.insert(peer, until);
            }
            None => {
                self.inner.pinned.remove(&peer);
            }
        }
    }

    /// Says where a TLS connection for `peer` is opened when none is open, and which name
    /// its certificate must carry (`None` forgets it). Without a route a TLS destination is
    /// connected to at its own address and must present a certificate for that IP address.
    /// Routes whose `until` has passed are forgotten as new ones come in.
    pub fn route_tls(&self, peer: SocketAddr, target: Option<TlsTarget>) {
        let now = std::time::Instant::now();
        self.inner
            .tls_routes
            .retain(|_, route| route.until.is_none_or(|until| until > now));
        match target {
            Some(target) => {
                self.inner.tls_routes.insert(peer, target);
            }
            None => {
                self.inner.tls_routes.remove(&peer);
            }
        }
    }

    /// Re-reads trust: TLS handshakes accepted from now on ask for client certificates
    /// chaining to `client_roots` (mutual TLS), and TLS connections opened from now on trust
    /// `extra_cas` beside the Mozilla roots. Connections already up keep what they verified.
    pub fn replace_trust(
        &self,
        client_roots: Option<Arc<rustls::RootCertStore>>,
        extra_cas: Option<&rustls::RootCertStore>,
    ) -> Result<(), TlsError> {
        if let Some(acceptors) = &self.inner.acceptors {
            acceptors.replace_client_roots(client_roots)?;
        }
        if let Some(connector) = &self.inner.config.tls_connector {
            connector.replace_roots(extra_cas)?;
        }
        Ok(())
    }

    /// The bound UDP addresses (ports resolved when 0 was asked for).
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.inner
            .udp
            .iter()
            .map(|endpoint| endpoint.local)
            .collect()
    }

    /// The TCP listening addresses.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.inner.tcp_local.clone()
    }

    /// The verified client certificates of open TLS connections (mutual TLS).
    pub fn client_certificates(&self) -> ClientCertificates {
        self.inner.client_certificates.clone()
    }

    /// The TLS listening addresses.
    pub fn tls_addrs(&self) -> Vec<SocketAddr> {
        self.inner.tls_local.clone()
    }

    /// The SIP over WebSocket listening addresses.
    pub fn ws_addrs(&self) -> Vec<SocketAddr> {
        self.inner.ws_local.clone()
    }

    /// The SIP over secure WebSocket listening addresses.
    pub fn wss_addrs(&self) -> Vec<SocketAddr> {
        self.inner.wss_local.clone()
    }

    /// What opens outgoing TLS connections (to set our client certificate on), if configured.
    pub fn tls_connector(&self) -> Option<&Arc<TlsConnector>> {
        self.inner.config.tls_connector.as_ref()
    }

    /// Transport counters.
    pub fn stats(&self) -> &TransportStats {
        &self.inner.stats
    }
}

/// Binds stream listeners; returns them with their resolved addresses.
async fn bind_streams(
    addrs: &[SocketAddr],
) -> std::io::Result<(Vec<tokio::net::TcpListener>, Vec<SocketAddr>)> {
    let mut listeners = Vec::new();
    for addr in addrs {
        listeners.push(tokio::net::TcpListener::bind(addr).await?);
    }
    let local = listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok((listeners, local))
}

impl Inner {
    /// Whether the gate (if any) lets `source` in.
    fn admits(&self, source: SocketAddr, transport: Transport) -> bool {
        self.gate
            .as_ref()
            .is_none_or(|gate| gate.admit(source, transport))
    }

    /// Hands a message read from a stream to the core. The reader waits while the queue is
    /// full, which pushes back on the peer (a datagram is dropped instead: `deliver_datagram`).
    async fn deliver(&self, inbound: Inbound) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let _ = self.inbound.send(inbound).await;
    }

    /// Hands a received datagram to the core, or drops it (counted) when the queue is full:
    /// the sender retransmits.
    fn deliver_datagram(&self, inbound: Inbound) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        if self.inbound.try_send(inbound).is_err() {
            self.stats.dropped_overload.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// [`Inner::classify`] for a datagram still in the receive buffer: a message that parses
    /// needs none of its bytes afterwards, so only the ones kept (too large, malformed: the
    /// core answers those from their raw text) are copied out.
    fn classify_datagram(&self, datagram: &[u8]) -> Payload {
        self.classify_keeping(datagram, || Bytes::copy_from_slice(datagram))
    }

    /// A received message, parsed, or kept as bytes when too large or malformed.
    fn classify(&self, bytes: Bytes) -> Payload {
        self.classify_keeping(&bytes, || bytes.clone())
    }

    /// Classifies `message`; `keep` gives its bytes only when they are kept.
    fn classify_keeping(&self, message: &[u8], keep: impl FnOnce() -> Bytes) -> Payload {
        if message.len() > self.config.max_message_bytes {
            let size = message.len();
            return Payload::TooLarge {
                bytes: keep(),
                size,
            };
        }
        match sip::parse::parse(message) {
            Ok(message) => Payload::Message(message),
            Err(error) => Payload::Malformed {
                bytes: keep(),
                error,
            },
        }
    }
}
