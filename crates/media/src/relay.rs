//! The tokio RTP/RTCP relay for one anchored call: one task, four sockets (RTP and RTCP on
//! each leg), no per-packet allocation and no per-packet timer.
//!
//! On each readiness wake-up a socket is drained with non-blocking reads into one reused
//! buffer and each datagram is sent straight on with a non-blocking send, so the task is
//! woken once per burst rather than once per packet. The media-timeout timer is one sleep
//! re-armed only when it fires (the deadline is recomputed from the last arrival times kept
//! in [`RelayCore`]), never per packet.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::media_timeout::Leg;
use crate::port_pool::PortPair;
use crate::relay_core::{LegConfig, LegReport, RelayCore, RelayEvent};

/// Largest datagram relayed; RTP for G.711 at 20 ms is 172 bytes, this leaves room for anything sane.
const MAX_DATAGRAM: usize = 2048;
/// Datagrams handled per socket per wake-up before yielding to the other sockets, for fairness.
const MAX_BURST: usize = 64;
/// Events buffered towards call control; when full, further events are dropped and counted.
const EVENT_CAPACITY: usize = 64;

/// Everything needed to start the relay of one call.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Switchboard's media address to bind.
    pub bind_ip: IpAddr,
    /// Ports facing the trunk (caller) leg.
    pub trunk_ports: PortPair,
    /// Ports facing the agent leg.
    pub agent_ports: PortPair,
    /// Trunk leg parameters from its SDP.
    pub trunk: LegConfig,
    /// Agent leg parameters from its SDP.
    pub agent: LegConfig,
    /// Hang up after this much RTP silence on either leg; `None` disables it.
    pub media_timeout: Option<Duration>,
    /// A latched peer silent this long may be replaced by a new source.
    pub relatch_after: Duration,
    /// Whether to bind and relay RTCP on port + 1.
    pub rtcp: bool,
}

/// Why a relay stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// [`RelayHandle::stop`] was called (normal hang-up).
    Stopped,
    /// A leg was silent for the configured time: hang up with reason `media-timeout`.
    MediaTimeout(Leg),
}

/// The final figures of a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayReport {
    /// Why it stopped.
    pub reason: StopReason,
    /// Trunk leg counters.
    pub trunk: LegReport,
    /// Agent leg counters.
    pub agent: LegReport,
    /// Events call control did not collect in time and that were dropped.
    pub events_dropped: u64,
    /// Socket errors other than "would block" seen while relaying.
    pub socket_errors: u64,
}

/// Control of one running relay.
#[derive(Debug)]
pub struct RelayHandle {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<RelayReport>,
    events: mpsc::Receiver<RelayEvent>,
    trunk_addr: SocketAddr,
    agent_addr: SocketAddr,
}

impl RelayHandle {
    /// Binds the sockets and starts the relay task on the current tokio runtime.
    /// Fails if a port is taken (the caller releases the pair and tries another).
    pub fn start(config: RelayConfig) -> io::Result<RelayHandle> {
        let bind = |port: u16| -> io::Result<UdpSocket> {
            let socket = StdUdpSocket::bind(SocketAddr::new(config.bind_ip, port))?;
            socket.set_nonblocking(true)?;
            UdpSocket::from_std(socket)
        };
        let trunk_rtp = bind(config.trunk_ports.rtp())?;
        let agent_rtp = bind(config.agent_ports.rtp())?;
        let rtcp = if config.rtcp {
            Some((
                bind(config.trunk_ports.rtcp())?,
                bind(config.agent_ports.rtcp())?,
            ))
        } else {
            None
        };
        let trunk_addr = trunk_rtp.local_addr()?;
        let agent_addr = agent_rtp.local_addr()?;
        let core = RelayCore::new(
            Instant::now(),
            config.trunk,
            config.agent,
            config.media_timeout,
            config.relatch_after,
        );
        let (stop_tx, stop_rx) = oneshot::channel();
        let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
        let sockets = Sockets {
            rtp: [trunk_rtp, agent_rtp],
            rtcp,
        };
        let task = tokio::spawn(run(core, sockets, stop_rx, events_tx));
        Ok(RelayHandle {
            stop: Some(stop_tx),
            task,
            events: events_rx,
            trunk_addr,
            agent_addr,
        })
    }

    /// The local RTP address facing the trunk leg (goes into the trunk's SDP).
    pub fn trunk_addr(&self) -> SocketAddr {
        self.trunk_addr
    }

    /// The local RTP address facing the agent leg (goes into the agent's SDP).
    pub fn agent_addr(&self) -> SocketAddr {
        self.agent_addr
    }

    /// Next event (latching, key press, media timeout); `None` once the relay has ended.
    pub async fn next_event(&mut self) -> Option<RelayEvent> {
        self.events.recv().await
    }

    /// Stops the relay (if still running) and returns its final figures.
    pub async fn stop(mut self) -> RelayReport {
        if let Some(stop) = self.stop.take() {
            // The task may already have ended on a media timeout; then nobody listens.
            let _ = stop.send(());
        }
        match self.task.await {
            Ok(report) => report,
            // Only reachable if the task panicked or the runtime is shutting down.
            Err(_) => RelayReport {
                reason: StopReason::Stopped,
                trunk: LegReport::default(),
                agent: LegReport::default(),
                events_dropped: 0,
                socket_errors: 1,
            },
        }
    }
}

struct Sockets {
    rtp: [UdpSocket; 2],
    rtcp: Option<(UdpSocket, UdpSocket)>,
}

#[derive(Clone, Copy)]
enum Stream {
    Rtp,
    Rtcp,
}

struct Counters {
    events_dropped: u64,
    socket_errors: u64,
}

async fn run(
    mut core: RelayCore,
    sockets: Sockets,
    mut stop: oneshot::Receiver<()>,
    events: mpsc::Sender<RelayEvent>,
) -> RelayReport {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    let mut counters = Counters {
        events_dropped: 0,
        socket_errors: 0,
    };
    let far_future = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let deadline = |core: &RelayCore| {
        core.poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or(far_future)
    };
    let sleep = tokio::time::sleep_until(deadline(&core));
    tokio::pin!(sleep);
    let [trunk_rtp, agent_rtp] = &sockets.rtp;
    let rtcp = sockets.rtcp.as_ref();

    let reason = loop {
        tokio::select! {
            biased;
            _ = &mut stop => break StopReason::Stopped,
            ready = trunk_rtp.readable() => {
                if ready.is_ok() {
                    drain(&mut core, Leg::Trunk, Stream::Rtp, trunk_rtp, agent_rtp, &mut buffer, &mut counters);
                }
            }
            ready = agent_rtp.readable() => {
                if ready.is_ok() {
                    drain(&mut core, Leg::Agent, Stream::Rtp, agent_rtp, trunk_rtp, &mut buffer, &mut counters);
                }
            }
            ready = async { rtcp?.0.readable().await.ok() }, if rtcp.is_some() => {
                if let (Some(()), Some((trunk, agent))) = (ready, rtcp) {
                    drain(&mut core, Leg::Trunk, Stream::Rtcp, trunk, agent, &mut buffer, &mut counters);
                }
            }
            ready = async { rtcp?.1.readable().await.ok() }, if rtcp.is_some() => {
                if let (Some(()), Some((trunk, agent))) = (ready, rtcp) {
                    drain(&mut core, Leg::Agent, Stream::Rtcp, agent, trunk, &mut buffer, &mut counters);
                }
            }
            _ = &mut sleep => {
                core.handle_timeout(Instant::now());
                sleep.as_mut().reset(deadline(&core));
            }
        }
        while let Some(event) = core.poll_event() {
            if events.try_send(event).is_err() {
                counters.events_dropped += 1;
            }
        }
        if let Some(leg) = core.timed_out() {
            break StopReason::MediaTimeout(leg);
        }
    };
    RelayReport {
        reason,
        trunk: core.report(Leg::Trunk),
        agent: core.report(Leg::Agent),
        events_dropped: counters.events_dropped,
        socket_errors: counters.socket_errors,
    }
}

/// Reads everything queued on `from` (up to a burst) and forwards it through `to`.
fn drain(
    core: &mut RelayCore,
    leg: Leg,
    stream: Stream,
    from: &UdpSocket,
    to: &UdpSocket,
    buffer: &mut [u8],
    counters: &mut Counters,
) {
    for _ in 0..MAX_BURST {
        let (len, source) = match from.try_recv_from(buffer) {
            Ok(received) => received,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) => {
                // ICMP port unreachable for an earlier send and the like: count, keep going.
                tracing::debug!(error = %e, ?leg, "relay receive error");
                counters.socket_errors += 1;
                continue;
            }
        };
        let Some(datagram) = buffer.get(..len) else {
            continue;
        };
        let now = Instant::now();
        let destination = match stream {
            Stream::Rtp => core.handle_rtp(now, leg, source, datagram),
            Stream::Rtcp => core.handle_rtcp(now, leg, source, datagram),
        };
        if let Some(destination) = destination {
            if let Err(e) = to.try_send_to(datagram, destination) {
                if e.kind() != io::ErrorKind::WouldBlock {
                    counters.socket_errors += 1;
                }
                core.note_send_failure(leg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port_pool::PortPool;
    use rtp_rs::{RtpPacketBuilder, Seq};

    /// Starts a relay on loopback with ports from a test range, skipping ports in use.
    fn start_relay(trunk: LegConfig, agent: LegConfig, timeout: Option<Duration>) -> RelayHandle {
        let mut pool = PortPool::new(47000, 48999).expect("test range");
        for _ in 0..100 {
            let (Ok(a), Ok(b)) = (pool.allocate(), pool.allocate()) else {
                break;
            };
            let config = RelayConfig {
                bind_ip: "127.0.0.1".parse().expect("loopback"),
                trunk_ports: a,
                agent_ports: b,
                trunk,
                agent,
                media_timeout: timeout,
                relatch_after: Duration::from_secs(2),
                rtcp: true,
            };
            if let Ok(handle) = RelayHandle::start(config) {
                return handle;
            }
        }
        panic!("no free port pair in 47000-48999 for the test relay");
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::new()
            .payload_type(0)
            .ssrc(0xCAFE)
            .sequence(Seq::from(seq))
            .timestamp(u32::from(seq) * 160)
            .payload(payload)
            .build()
            .expect("valid packet")
    }

    async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = vec![0u8; 2048];
        let (len, from) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buf))
            .await
            .expect("packet within 2 s")
            .expect("recv works");
        buf.truncate(len);
        (buf, from)
    }

    #[tokio::test]
    async fn relays_real_udp_byte_for_byte_both_ways() {
        let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind caller");
        let agent = UdpSocket::bind("127.0.0.1:0").await.expect("bind agent");
        // The agent's SDP address is wrong (NAT): latching must fix it once the agent speaks.
        let relay = start_relay(
            LegConfig {
                remote_rtp: Some(caller.local_addr().expect("addr")),
                ..LegConfig::default()
            },
            LegConfig {
                remote_rtp: Some("127.0.0.1:9".parse().expect("addr")),
                ..LegConfig::default()
            },
            None,
        );
        let agent_side = relay.agent_addr();
        let trunk_side = relay.trunk_addr();

        let from_agent = rtp(1, &[0x11; 160]);
        agent.send_to(&from_agent, agent_side).await.expect("send");
        let (bytes, from) = recv(&caller).await;
        assert_eq!(bytes, from_agent, "byte for byte");
        assert_eq!(
            from, trunk_side,
            "the caller sees Switchboard's trunk-side port"
        );

        for seq in 1..=20u16 {
            let payload: Vec<u8> = (0..160).map(|i| (i as u8) ^ (seq as u8)).collect();
            let packet = rtp(seq, &payload);
            caller.send_to(&packet, trunk_side).await.expect("send");
            let (bytes, from) = recv(&agent).await;
            assert_eq!(bytes, packet);
            assert_eq!(from, agent_side);
        }
        // Garbage is not relayed.
        caller.send_to(b"not rtp", trunk_side).await.expect("send");

        // RTCP goes port + 1 to port + 1; the caller's RTCP address was never signalled and
        // is learned by latching, like the agent's.
        let caller_rtcp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let agent_rtcp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        caller_rtcp
            .send_to(
                &[0x80u8, 201, 0, 1, 0, 0, 0, 1],
                SocketAddr::new(trunk_side.ip(), trunk_side.port() + 1),
            )
            .await
            .expect("send");
        // Give the relay a moment to latch the caller's RTCP source before the agent reports.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let sr = [
            0x80u8, 200, 0, 6, 0, 0, 0xCA, 0xFE, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1, 0, 0, 0, 1, 0,
            0, 0, 160,
        ];
        agent_rtcp
            .send_to(&sr, SocketAddr::new(agent_side.ip(), agent_side.port() + 1))
            .await
            .expect("send");
        let (bytes, from) = recv(&caller_rtcp).await;
        assert_eq!(bytes, sr);
        assert_eq!(from.port(), trunk_side.port() + 1);

        let report = relay.stop().await;
        assert_eq!(report.reason, StopReason::Stopped);
        assert_eq!(report.trunk.forwarded, 20);
        assert_eq!(report.trunk.dropped_invalid, 1);
        assert_eq!(report.trunk.rtp.lost, 0);
        assert_eq!(report.agent.forwarded, 1);
        assert_eq!(
            report.agent.latched,
            Some(agent.local_addr().expect("addr"))
        );
        assert_eq!(report.agent.rtcp_forwarded, 1);
        assert_eq!(
            report.trunk.dropped_no_destination, 1,
            "caller RTCP before the agent's was known"
        );
    }

    #[tokio::test]
    async fn silence_ends_the_relay_with_media_timeout() {
        let caller = UdpSocket::bind("127.0.0.1:0").await.expect("bind caller");
        let mut relay = start_relay(
            LegConfig {
                remote_rtp: Some(caller.local_addr().expect("addr")),
                ..LegConfig::default()
            },
            LegConfig::default(),
            Some(Duration::from_millis(300)),
        );
        caller
            .send_to(&rtp(1, &[0; 160]), relay.trunk_addr())
            .await
            .expect("send");
        let mut saw_timeout = None;
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_secs(3), relay.next_event()).await
        {
            if let RelayEvent::MediaTimeout { silent_leg } = event {
                saw_timeout = Some(silent_leg);
                break;
            }
        }
        assert_eq!(saw_timeout, Some(Leg::Agent), "the agent never sent RTP");
        let report = relay.stop().await;
        assert_eq!(report.reason, StopReason::MediaTimeout(Leg::Agent));
    }
}
