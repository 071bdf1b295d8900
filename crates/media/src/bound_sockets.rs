//! Sockets of finished sessions, kept bound for the next call on the same port.
//!
//! Binding, closing and registering a socket with the runtime's poller (`bind`, `close`,
//! two `epoll_ctl`) for each of a call's four ports was a large part of what a call cost
//! the media plane (issue 12, docs/scaling.md). A session therefore hands its sockets back
//! here when it ends, still bound and still registered, and the next session on that port
//! takes the socket instead of binding a new one: in steady state a call costs no socket
//! system call at all apart from draining what arrived while the socket waited.
//!
//! A reused socket must not carry the previous call into the next one: datagrams that
//! arrived while it waited here (the old peer still sending after its BYE) are read and
//! dropped when call control holds the pair for the next call, before the SDP naming the
//! port is sent, so they can neither latch (symmetric RTP) nor be relayed, while the new
//! peer's first packets, which may arrive before its session takes the socket, are kept.
//! Latching itself is per session, so it starts afresh for every call.
//!
//! Sockets are kept per local address (IP and port), each with the worker whose runtime
//! registered it ([`crate::MediaWorkers`]): only that runtime's poller reports it readable,
//! so a socket taken by another worker is re-registered there (two `epoll_ctl`, still no
//! bind or close).
//!
//! Call control also holds a pair here ([`PortHold`]) before it names the pair in an SDP:
//! the sockets are bound then, not when the session starts, so a port another process holds
//! is found while another pair can still be chosen, and once bound no other process can
//! take it between the SDP and the session. Such a socket is kept unregistered until a
//! session takes it on its worker.

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::UdpSocket;

use crate::port_pool::PortPair;

/// Most stale datagrams dropped from one socket when its pair is held; a socket's receive buffer
/// holds far fewer RTP packets than this, so the limit only bounds a flood arriving meanwhile.
const MAX_STALE: usize = 4096;

/// Counters of the store, for tests and the bench's report.
#[derive(Debug, Default)]
pub struct BoundSocketCounters {
    /// Sockets bound afresh because none was kept for the address.
    pub bound: AtomicU64,
    /// Sockets taken from the store by the worker that kept them (no system call apart
    /// from the drain).
    pub reused: AtomicU64,
    /// Sockets taken from the store by another worker: re-registered with its poller.
    pub moved: AtomicU64,
    /// Stale datagrams dropped from reused sockets.
    pub stale_dropped: AtomicU64,
    /// Sockets bound by [`BoundSockets::hold`] ahead of their session (also counted in
    /// `bound`), then registered with a worker's poller when a session takes them.
    pub held: AtomicU64,
}

/// A socket waiting in the store.
#[derive(Debug)]
enum Kept {
    /// Bound by [`BoundSockets::hold`] for a call whose session has not started yet:
    /// registered with no poller.
    Held(StdUdpSocket),
    /// Given back by a session on `worker`, still registered with that worker's poller.
    Registered { worker: usize, socket: UdpSocket },
}

impl Kept {
    /// The socket itself, for system calls made directly (whether registered or not).
    fn sock_ref(&self) -> socket2::SockRef<'_> {
        match self {
            Kept::Held(socket) => socket2::SockRef::from(socket),
            Kept::Registered { socket, .. } => socket2::SockRef::from(socket),
        }
    }
}

/// The store shared by the media workers. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct BoundSockets {
    /// Each socket, registered with a worker's runtime or held for a session to come.
    kept: Arc<Mutex<HashMap<SocketAddr, Kept>>>,
    counters: Arc<BoundSocketCounters>,
}

impl BoundSockets {
    /// An empty store.
    pub fn new() -> BoundSockets {
        BoundSockets::default()
    }

    /// The socket for `ip:port` for `worker`: the kept one, or a new one bound now. Call this
    /// inside `worker`'s runtime: a new socket, or one not registered there yet, is
    /// registered with the current runtime. Stale datagrams are not dropped here but when
    /// the pair is held for its call ([`BoundSockets::hold`]): by the time a session takes
    /// its sockets its peer may already be sending.
    pub fn take_or_bind(&self, worker: usize, ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
        let address = SocketAddr::new(ip, port);
        let kept = self.lock().remove(&address);
        match kept {
            Some(Kept::Registered {
                worker: owner,
                socket,
            }) if owner == worker => {
                self.counters.reused.fetch_add(1, Ordering::Relaxed);
                Ok(socket)
            }
            Some(Kept::Registered { socket, .. }) => {
                let socket = UdpSocket::from_std(socket.into_std()?)?;
                self.counters.moved.fetch_add(1, Ordering::Relaxed);
                Ok(socket)
            }
            Some(Kept::Held(socket)) => UdpSocket::from_std(socket),
            None => {
                let socket = bind(address)?;
                self.counters.bound.fetch_add(1, Ordering::Relaxed);
                Ok(socket)
            }
        }
    }

    /// Keeps `socket`, bound to `address` and registered with `worker`'s runtime, for the
    /// next session on its port. The caller names the address it took the socket for
    /// (asking the kernel was a system call per socket and call).
    pub fn give_back(&self, worker: usize, address: SocketAddr, socket: UdpSocket) {
        self.lock()
            .insert(address, Kept::Registered { worker, socket });
    }

    /// Binds `pair`'s two ports on `ip` now, unless sockets are kept for them already, and
    /// keeps them for the session that will take them. On an error (`AddrInUse`: another
    /// process holds a port) nothing is kept for the pair that was not kept before.
    pub fn hold(&self, ip: IpAddr, pair: PortPair) -> io::Result<()> {
        let addresses = [pair.rtp(), pair.rtcp()].map(|port| SocketAddr::new(ip, port));
        // Once the pool has cycled, every pair is kept already: one lock, and a read of each
        // socket that answers "would block" when nothing waited in it. A kept socket may have
        // datagrams of an earlier call queued (that call's peer still sending after its BYE,
        // or a peer that had our SDP for a call that never started): dropped now, before the
        // SDP naming the port goes out, so they can neither latch (symmetric RTP) nor be
        // relayed in the new call, and the new peer's are not lost.
        let mut stale = 0;
        let kept_already = {
            let kept = self.lock();
            addresses.map(|address| match kept.get(&address) {
                Some(socket) => {
                    stale += drain_stale(socket.sock_ref());
                    true
                }
                None => false,
            })
        };
        self.counters
            .stale_dropped
            .fetch_add(stale, Ordering::Relaxed);
        if kept_already == [true, true] {
            return Ok(());
        }
        // Bound outside the lock, so the workers taking and giving back sockets never wait
        // for a system call of call control's. Nobody else binds these addresses meanwhile:
        // call control holds a pair only while the pool has it out to one call.
        let mut fresh: [Option<StdUdpSocket>; 2] = [None, None];
        for ((address, kept), socket) in addresses.iter().zip(kept_already).zip(&mut fresh) {
            if !kept {
                *socket = Some(bind_nonblocking(*address)?);
            }
        }
        let mut held = 0;
        let mut kept = self.lock();
        for (address, socket) in addresses.into_iter().zip(fresh) {
            if let Some(socket) = socket {
                kept.insert(address, Kept::Held(socket));
                held += 1;
            }
        }
        self.counters.bound.fetch_add(held, Ordering::Relaxed);
        self.counters.held.fetch_add(held, Ordering::Relaxed);
        Ok(())
    }

    /// Closes the kept socket of `ip:port`, if any: after a session failed to start, its
    /// ports are probed to tell a port another process holds from one of ours.
    pub fn close(&self, ip: IpAddr, port: u16) {
        let closed = self.lock().remove(&SocketAddr::new(ip, port));
        drop(closed);
    }

    /// Closes every kept socket (at shutdown, while the workers' runtimes still run).
    pub fn close_all(&self) {
        let closed = std::mem::take(&mut *self.lock());
        drop(closed);
    }

    /// Sockets kept now.
    pub fn kept(&self) -> usize {
        self.lock().len()
    }

    /// The store's counters.
    pub fn counters(&self) -> &BoundSocketCounters {
        &self.counters
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Kept>> {
        // A panic while holding the map cannot leave it half-changed (one insert or remove).
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What call control asks of the I/O edge before it names a port pair in an SDP: that both
/// ports are Switchboard's from now on ([`BoundSockets::hold`]). An error means the pair
/// cannot be used now (`AddrInUse`: another process holds a port of it).
pub trait PortHold: std::fmt::Debug + Send {
    /// Makes `pair` on `ip` Switchboard's, or says why it cannot be.
    fn hold(&self, ip: IpAddr, pair: PortPair) -> io::Result<()>;
}

impl PortHold for BoundSockets {
    fn hold(&self, ip: IpAddr, pair: PortPair) -> io::Result<()> {
        BoundSockets::hold(self, ip, pair)
    }
}

/// Where one session's sockets come from and go back to.
#[derive(Debug, Clone, Default)]
pub enum SocketHome {
    /// Bound when the session starts and closed when it ends (sessions started with
    /// [`crate::MediaSession::start`] on the caller's runtime).
    #[default]
    Fresh,
    /// Taken from and given back to a store, on a media worker.
    Kept {
        /// The store.
        store: BoundSockets,
        /// The worker the session runs on.
        worker: usize,
    },
}

impl SocketHome {
    /// Sockets kept in `store`, for a session on `worker`.
    pub fn kept(store: BoundSockets, worker: usize) -> SocketHome {
        SocketHome::Kept { store, worker }
    }

    /// The socket for `ip:port` (call inside the session's runtime).
    pub fn take(&self, ip: IpAddr, port: u16) -> io::Result<UdpSocket> {
        match self {
            SocketHome::Fresh => bind(SocketAddr::new(ip, port)),
            SocketHome::Kept { store, worker } => store.take_or_bind(*worker, ip, port),
        }
    }

    /// The session is done with `socket`, taken for `ip:port`: keep it for the next one, or
    /// close it. Port 0 (an ephemeral port, in tests) is read from the socket.
    pub fn give_back(&self, ip: IpAddr, port: u16, socket: UdpSocket) {
        let SocketHome::Kept { store, worker } = self else {
            return;
        };
        let address = match port {
            0 => socket.local_addr(),
            port => Ok(SocketAddr::new(ip, port)),
        };
        if let Ok(address) = address {
            store.give_back(*worker, address, socket);
        }
    }

    /// A session could not start: close whatever is kept on its ports.
    pub fn close(&self, ip: IpAddr, port: u16) {
        if let SocketHome::Kept { store, .. } = self {
            store.close(ip, port);
        }
    }
}

/// Binds one non-blocking UDP socket, registered with the current runtime.
fn bind(address: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::from_std(bind_nonblocking(address)?)
}

/// Binds `address` for use by a tokio runtime later (which needs it non-blocking).
fn bind_nonblocking(address: SocketAddr) -> io::Result<StdUdpSocket> {
    let socket = StdUdpSocket::bind(address)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Reads and drops every datagram queued on `socket`; returns how many.
///
/// Read with the system call directly, not through tokio: tokio answers "would block"
/// without asking the kernel until its poller has seen the socket become readable, and a
/// datagram that arrived a moment ago may not have been seen yet.
fn drain_stale(socket: socket2::SockRef<'_>) -> u64 {
    // The content is not needed: a datagram larger than the buffer is still consumed whole.
    let mut buffer = [MaybeUninit::<u8>::uninit(); 1];
    let mut dropped = 0;
    for _ in 0..MAX_STALE {
        match socket.recv_from(&mut buffer) {
            Ok(_) => dropped += 1,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            // ICMP errors of earlier sends and the like: consumed, go on.
            Err(_) => continue,
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// A socket given back is the one the next call takes. Datagrams of the previous call
    /// that waited in it are dropped when the pair is held for the next call; the new peer's
    /// first datagram, sent after that but before its session takes the socket, is kept.
    #[tokio::test]
    async fn a_socket_given_back_is_held_again_without_the_old_calls_datagrams() {
        let store = BoundSockets::new();
        let pair = pairs(40000)
            .find(|pair| store.hold(LOOPBACK, *pair).is_ok())
            .expect("a free pair");
        let address = SocketAddr::new(LOOPBACK, pair.rtp());
        let first = store
            .take_or_bind(0, LOOPBACK, pair.rtp())
            .expect("held socket");
        store.give_back(0, address, first);
        assert_eq!(store.kept(), 2);

        // The previous call's peer goes on sending while the socket waits in the store.
        let old_peer = StdUdpSocket::bind((LOOPBACK, 0)).expect("peer");
        for n in 0..3u8 {
            old_peer.send_to(&[n; 172], address).expect("send");
        }
        store.hold(LOOPBACK, pair).expect("kept: held again");
        assert_eq!(store.counters().stale_dropped.load(Ordering::Relaxed), 3);
        // The new call's peer has our SDP and sends before its session has started.
        let new_peer = StdUdpSocket::bind((LOOPBACK, 0)).expect("peer");
        new_peer.send_to(b"new", address).expect("send");
        let again = store
            .take_or_bind(0, LOOPBACK, pair.rtp())
            .expect("kept socket");
        assert_eq!(again.local_addr().expect("bound"), address);
        assert_eq!(store.kept(), 1, "the RTCP socket waits for its session");
        assert_eq!(store.counters().reused.load(Ordering::Relaxed), 1);
        assert_eq!(store.counters().bound.load(Ordering::Relaxed), 2);

        let mut buffer = [0u8; 16];
        let (len, from) = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            again.recv_from(&mut buffer),
        )
        .await
        .expect("the new peer's datagram arrives")
        .expect("receive");
        assert_eq!(&buffer[..len], b"new");
        assert_eq!(from, new_peer.local_addr().expect("bound"));
    }

    /// Pairs of a range no other test of this crate uses.
    fn pairs(first: u16) -> impl Iterator<Item = PortPair> {
        let mut pool = crate::PortPool::new(first, first + 999).expect("range");
        std::iter::from_fn(move || pool.allocate().ok())
    }

    #[tokio::test]
    async fn a_held_pair_is_ours_until_its_session_takes_it_without_binding_again() {
        let store = BoundSockets::new();
        let pair = pairs(46000)
            .find(|pair| store.hold(LOOPBACK, *pair).is_ok())
            .expect("a free pair");
        assert_eq!(store.kept(), 2, "both ports bound");
        let squatter = StdUdpSocket::bind((LOOPBACK, pair.rtcp()));
        assert_eq!(
            squatter.map(|_| ()).map_err(|e| e.kind()),
            Err(io::ErrorKind::AddrInUse),
            "no other process can take a held port"
        );
        store
            .hold(LOOPBACK, pair)
            .expect("held already: nothing to do");
        let counters = store.counters();
        assert_eq!(counters.bound.load(Ordering::Relaxed), 2);
        assert_eq!(counters.held.load(Ordering::Relaxed), 2);

        let rtp = store
            .take_or_bind(0, LOOPBACK, pair.rtp())
            .expect("the held socket");
        assert_eq!(rtp.local_addr().map(|a| a.port()).ok(), Some(pair.rtp()));
        assert_eq!(counters.bound.load(Ordering::Relaxed), 2, "not bound again");
        assert_eq!(store.kept(), 1);
        // Registered with this runtime: a datagram sent now is received through tokio.
        let peer = StdUdpSocket::bind((LOOPBACK, 0)).expect("peer");
        peer.send_to(b"rtp", (LOOPBACK, pair.rtp())).expect("send");
        let mut buffer = [0u8; 8];
        let (len, _) = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            rtp.recv_from(&mut buffer),
        )
        .await
        .expect("the datagram arrives")
        .expect("receive");
        assert_eq!(&buffer[..len], b"rtp");
    }

    #[test]
    fn a_pair_with_one_port_held_elsewhere_is_not_held_at_all() {
        // Another process holds the RTCP port of a pair whose RTP port is free.
        let (pair, _squatter) = pairs(41000)
            .find_map(|pair| {
                let squatter = StdUdpSocket::bind((LOOPBACK, pair.rtcp())).ok()?;
                let rtp_free = StdUdpSocket::bind((LOOPBACK, pair.rtp())).is_ok();
                rtp_free.then_some((pair, squatter))
            })
            .expect("a pair to squat on");
        let store = BoundSockets::new();
        let error = store
            .hold(LOOPBACK, pair)
            .expect_err("the RTCP port is taken");
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(store.kept(), 0);
        assert!(
            StdUdpSocket::bind((LOOPBACK, pair.rtp())).is_ok(),
            "the RTP port bound on the way was closed again"
        );
        assert_eq!(store.counters().held.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_port_held_elsewhere_is_an_addr_in_use_error() {
        let holder = StdUdpSocket::bind((LOOPBACK, 0)).expect("holder");
        let port = holder.local_addr().expect("bound").port();
        let store = BoundSockets::new();
        let error = store
            .take_or_bind(0, LOOPBACK, port)
            .expect_err("the port is taken");
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        assert_eq!(store.counters().bound.load(Ordering::Relaxed), 0);
    }
}
