//! UDP: one receive task per socket; sends go straight to the socket.

use crate::{Inbound, Inner};
use bytes::Bytes;
use sip::Peer;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Large kernel buffers absorb bursts at thousands of calls per second; the kernel caps the
/// request at net.core.rmem_max/wmem_max, which is fine.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// The largest UDP payload; anything bigger cannot arrive in one datagram anyway.
const MAX_DATAGRAM: usize = 65_535;

/// A bound UDP socket and its local address, read once at bind time: sends pick the socket
/// of the destination's address family for every message, and asking the kernel each time
/// (getsockname) cost a system call per SIP message sent.
pub(crate) struct UdpEndpoint {
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) local: SocketAddr,
}

pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<UdpEndpoint> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer only costs burst tolerance.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let socket = UdpSocket::from_std(socket.into())?;
    let local = socket.local_addr()?;
    Ok(UdpEndpoint {
        socket: Arc::new(socket),
        local,
    })
}

pub(crate) async fn receive_loop(inner: Arc<Inner>, socket: Arc<UdpSocket>, local: SocketAddr) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let (len, from) = match socket.recv_from(&mut buffer).await {
            Ok(r) => r,
            Err(error) => {
                // ICMP port-unreachable surfaces here on some platforms; it is not fatal.
                tracing::debug!(%error, "UDP receive error");
                continue;
            }
        };
        let datagram = &buffer[..len];
        if sip::parse::is_keepalive(datagram) || !inner.admits(from, sip::Transport::Udp) {
            continue;
        }
        let payload = inner.classify(Bytes::copy_from_slice(datagram));
        let inbound = Inbound {
            source: Peer::udp(from),
            local,
            payload,
            received: std::time::Instant::now(),
        };
        inner.deliver(inbound, false).await;
    }
}

/// The socket that sends to `to`: the first bound in `to`'s address family, else the first.
fn socket_for(inner: &Inner, to: SocketAddr) -> Option<&Arc<UdpSocket>> {
    inner
        .udp
        .iter()
        .find(|endpoint| endpoint.local.is_ipv4() == to.is_ipv4())
        .or_else(|| inner.udp.first())
        .map(|endpoint| &endpoint.socket)
}

/// Datagrams to send: each destination and its bytes.
type Datagrams = Vec<(SocketAddr, Bytes)>;

/// The most datagrams handed to the kernel in one `sendmmsg`.
const SEND_BATCH: usize = 64;

/// Sends many datagrams with as few system calls as the kernel takes them in: one
/// `sendmmsg(2)` per socket for up to 64 messages. Call control answers a burst of
/// requests with a burst of messages to many peers; one `sendto` each cost a system call
/// entry and exit per message (13 % of the call-control thread under load). Whatever the
/// kernel does not take at once (a full buffer) goes the one-by-one way, which waits for
/// room.
pub(crate) fn send_many(inner: &Arc<Inner>, datagrams: Datagrams) {
    let mut by_socket: Vec<(Arc<UdpSocket>, Datagrams)> = Vec::new();
    for (to, data) in datagrams {
        let Some(socket) = socket_for(inner, to) else {
            inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        match by_socket.iter_mut().find(|(s, _)| Arc::ptr_eq(s, socket)) {
            Some((_, batch)) => batch.push((to, data)),
            None => by_socket.push((socket.clone(), vec![(to, data)])),
        }
    }
    for (socket, batch) in by_socket {
        let mut rest = batch.as_slice();
        while !rest.is_empty() {
            let (chunk, after) = rest.split_at(rest.len().min(SEND_BATCH));
            let sent = send_chunk(&socket, chunk);
            inner.stats.sent.fetch_add(sent as u64, Ordering::Relaxed);
            if sent < chunk.len() {
                for (to, data) in &rest[sent..] {
                    send(inner, *to, data.clone());
                }
                break;
            }
            rest = after;
        }
    }
}

/// One `sendmmsg` of `chunk` on `socket`; returns how many datagrams the kernel took (0 when
/// it took none, e.g. a full send buffer).
fn send_chunk(socket: &UdpSocket, chunk: &[(SocketAddr, Bytes)]) -> usize {
    use nix::sys::socket::{sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    let slices: Vec<[IoSlice<'_>; 1]> =
        chunk.iter().map(|(_, data)| [IoSlice::new(data)]).collect();
    let addresses: Vec<Option<SockaddrStorage>> = chunk
        .iter()
        .map(|(to, _)| Some(SockaddrStorage::from(*to)))
        .collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(chunk.len(), None);
    match sendmmsg(
        socket.as_raw_fd(),
        &mut headers,
        &slices,
        &addresses,
        [],
        MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(results) => results.count(),
        Err(error) => {
            tracing::debug!(%error, "sendmmsg took no datagram");
            0
        }
    }
}

pub(crate) fn send(inner: &Arc<Inner>, to: SocketAddr, data: Bytes) {
    let Some(socket) = socket_for(inner, to) else {
        inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
        return;
    };
    match socket.try_send_to(&data, to) {
        Ok(_) => {
            inner.stats.sent.fetch_add(1, Ordering::Relaxed);
        }
        Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
            let (inner, socket) = (inner.clone(), Arc::clone(socket));
            tokio::spawn(async move {
                match socket.send_to(&data, to).await {
                    Ok(_) => inner.stats.sent.fetch_add(1, Ordering::Relaxed),
                    Err(_) => inner.stats.send_errors.fetch_add(1, Ordering::Relaxed),
                };
            });
        }
        Err(error) => {
            tracing::debug!(%error, %to, "UDP send failed");
            inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}
