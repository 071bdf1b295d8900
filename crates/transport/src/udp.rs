//! UDP: one receive task per socket, on the runtime of the task that takes its messages;
//! sends go straight to the socket.

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

/// Datagrams read per wake-up at most before the receive task lets call control run.
/// Reading until the socket is empty moves a backlog from the kernel's buffer into the queue
/// in front of call control, where overload control sees its depth (`Switch::overloaded`).
/// Awaiting each datagram instead let tokio's cooperative budget stop the reads after 128, so
/// with call control on the same thread the queue never looked deep past capacity, the
/// backlog stood in the kernel's buffer, and INVITE→180 p99 reached 450 ms (docs/scaling.md).
/// 4 096 is more than the deepest refusal threshold (2 048) and still bounds one wake-up.
const DRAIN_PER_WAKEUP: usize = 4_096;

/// Binds `addr` and registers the socket with `runtime`'s reactor (the one its receive task
/// runs on).
pub(crate) fn bind(
    addr: SocketAddr,
    runtime: &tokio::runtime::Handle,
) -> std::io::Result<UdpEndpoint> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    // Best effort: a smaller buffer only costs burst tolerance.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let _registered_with = runtime.enter();
    let socket = UdpSocket::from_std(socket.into())?;
    let local = socket.local_addr()?;
    Ok(UdpEndpoint {
        socket: Arc::new(socket),
        local,
    })
}

/// Reads datagrams until the socket is empty (at most `DRAIN_PER_WAKEUP` at a time), hands
/// each to the core, and waits for the next.
pub(crate) async fn receive_loop(inner: Arc<Inner>, socket: Arc<UdpSocket>, local: SocketAddr) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        let emptied = drain(&inner, local, DRAIN_PER_WAKEUP, &mut buffer, |buffer| {
            socket.try_recv_from(buffer)
        });
        if !emptied {
            // The socket is still readable: let the core take what was read first.
            tokio::task::yield_now().await;
        }
    }
}

/// Reads up to `max` datagrams with `receive` and hands each to the core; returns whether
/// the socket was found empty ("would block") before `max` was reached.
fn drain(
    inner: &Inner,
    local: SocketAddr,
    max: usize,
    buffer: &mut [u8],
    mut receive: impl FnMut(&mut [u8]) -> std::io::Result<(usize, SocketAddr)>,
) -> bool {
    for _ in 0..max {
        let (len, from) = match receive(buffer) {
            Ok(received) => received,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return true,
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
        inner.deliver_datagram(Inbound {
            source: Peer::udp(from),
            local,
            payload,
            received: std::time::Instant::now(),
        });
    }
    false
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Payload, TransportConfig, Transports};
    use sip::rsip::message::HasHeaders;
    use std::collections::VecDeque;
    use std::io::{Error, ErrorKind};
    use std::time::Duration;
    use tokio::sync::mpsc;

    const PHONE: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::new(127, 0, 0, 1),
        5999,
    ));

    fn options(n: usize) -> Vec<u8> {
        format!(
            "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{n}\r\n\
             From: <sip:p@b>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: drain-{n}\r\n\
             CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    /// No listener at all.
    fn no_listeners() -> TransportConfig {
        TransportConfig::without_listeners(65_535, Duration::from_secs(300))
    }

    /// Transports with no listener, for their `Inner`; the core's end of the queue; a
    /// receive buffer.
    struct Rig {
        transports: Transports,
        queue: mpsc::Receiver<Inbound>,
        buffer: Vec<u8>,
    }

    impl Rig {
        async fn new() -> Self {
            let (tx, queue) = mpsc::channel(1024);
            Rig {
                transports: Transports::start(no_listeners(), tx).await.expect("starts"),
                queue,
                buffer: vec![0u8; MAX_DATAGRAM],
            }
        }

        /// One wake-up's drain of at most `max` datagrams from `receive`.
        fn drain(
            &mut self,
            max: usize,
            receive: impl FnMut(&mut [u8]) -> std::io::Result<(usize, SocketAddr)>,
        ) -> bool {
            let local = SocketAddr::from(([127, 0, 0, 1], 5060));
            drain(
                &self.transports.inner,
                local,
                max,
                &mut self.buffer,
                receive,
            )
        }

        /// The Call-IDs of the messages queued for the core, taken from the queue.
        fn queued(&mut self) -> Vec<String> {
            std::iter::from_fn(|| self.queue.try_recv().ok())
                .map(|inbound| match inbound.payload {
                    Payload::Message(message) => sip::headers::call_id_of(message.headers())
                        .unwrap_or_default()
                        .to_owned(),
                    other => panic!("not a message: {other:?}"),
                })
                .collect()
        }
    }

    /// A socket with `waiting` in its buffer, then empty.
    fn socket(
        mut waiting: VecDeque<std::io::Result<Vec<u8>>>,
    ) -> impl FnMut(&mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
        move |buffer| match waiting.pop_front() {
            None => Err(Error::from(ErrorKind::WouldBlock)),
            Some(Err(error)) => Err(error),
            Some(Ok(datagram)) => {
                buffer[..datagram.len()].copy_from_slice(&datagram);
                Ok((datagram.len(), PHONE))
            }
        }
    }

    #[tokio::test]
    async fn a_backlog_in_the_socket_is_queued_for_the_core_in_one_wake_up() {
        let mut rig = Rig::new().await;
        // Far more than tokio's cooperative budget of 128 reads, which stopped the old loop
        // and left the rest in the kernel's buffer where overload control cannot see it.
        assert!(rig.drain(4_096, socket((0..500).map(|n| Ok(options(n))).collect())));
        let queued = rig.queued();
        assert_eq!(queued.len(), 500);
        assert_eq!(queued[0], "drain-0");
        assert_eq!(queued[499], "drain-499", "in the order they arrived");
    }

    #[tokio::test]
    async fn a_drain_stops_at_its_cap_and_says_the_socket_is_not_empty() {
        let mut rig = Rig::new().await;
        let mut receive = socket((0..50).map(|n| Ok(options(n))).collect());
        assert!(!rig.drain(32, &mut receive));
        assert_eq!(rig.queued().len(), 32);
        assert!(rig.drain(32, &mut receive));
        let rest = rig.queued();
        assert_eq!(rest.len(), 18);
        assert_eq!(rest[0], "drain-32");
    }

    #[tokio::test]
    async fn a_receive_error_or_a_keepalive_does_not_end_the_drain() {
        let mut rig = Rig::new().await;
        let waiting = VecDeque::from([
            Ok(options(1)),
            // An ICMP port-unreachable for an earlier send surfaces on the next receive.
            Err(Error::from(ErrorKind::ConnectionRefused)),
            Ok(b"\r\n\r\n".to_vec()),
            Ok(options(2)),
        ]);
        assert!(rig.drain(4_096, socket(waiting)));
        assert_eq!(rig.queued(), ["drain-1", "drain-2"]);
        assert_eq!(rig.transports.stats().received.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn udp_sockets_are_read_on_the_runtime_they_are_placed_on() {
        let udp_runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let handle = udp_runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            udp_runtime.block_on(async {
                let _ = stopped.await;
            })
        });
        let (tx, mut rx) = mpsc::channel(16);
        let config = TransportConfig {
            udp: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            ..no_listeners()
        };
        let transports = Transports::start_placed(config, tx, None, handle)
            .await
            .expect("binds");
        let to = transports.udp_addrs()[0];
        let phone = std::net::UdpSocket::bind("127.0.0.1:0").expect("phone socket");
        phone.send_to(&options(1), to).expect("sent");
        let first = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("read by the placed runtime")
            .expect("queue open");
        assert_eq!(first.source.addr, phone.local_addr().expect("bound"));
        // With that runtime gone nothing reads the socket any more, though this one runs on.
        stop.send(()).expect("thread waits");
        thread.join().expect("thread ends");
        phone.send_to(&options(2), to).expect("sent");
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err(),
            "nothing reads UDP on the test's own runtime"
        );
    }
}
