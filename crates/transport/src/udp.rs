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
        let payload = inner.classify_datagram(datagram);
        let inbound = Inbound {
            source: Peer::udp(from),
            local,
            payload,
            received: std::time::Instant::now(),
        };
        inner.deliver(inbound, false).await;
    }
}

pub(crate) fn send(inner: &Arc<Inner>, to: SocketAddr, data: Bytes) {
    let Some(socket) = inner
        .udp
        .iter()
        .find(|endpoint| endpoint.local.is_ipv4() == to.is_ipv4())
        .or_else(|| inner.udp.first())
        .map(|endpoint| &endpoint.socket)
    else {
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
