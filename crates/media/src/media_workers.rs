//! The media worker threads: every media session runs on one of a few dedicated threads,
//! never on the runtime that runs call control.
//!
//! Why (issue 12, docs/scaling.md): with sessions as tasks on call control's runtime, the
//! relay's packets and the call-control task competed for the same tokio workers, and
//! tokio's work stealing moved both between threads with a futex wake-up each time. Here
//! each worker is a thread with its own single-threaded runtime and its own poller: a call's
//! sockets are registered with its worker's poller only, so every packet of the call is
//! received, relayed and sent on that one thread, with no hand-over between threads.
//!
//! The worker also starts its sessions: call control gets a session's handle at once and the
//! runtime hands each worker the sessions of a round of events together
//! ([`MediaWorkers::flush_starts`]); the worker takes their sockets, registers them with its
//! poller and spawns them, so call control makes no system call for a session.
//!
//! A worker that runs out of work after relaying media waits [`WAKE_UP_COALESCING`] before it
//! sleeps in its poller, so one wake-up relays what arrived on many sockets meanwhile, as a
//! network card moderates its interrupts: at 50 packets a second per stream nearly every
//! wake-up found one packet, and going to sleep and waking up again was a third of the
//! worker's time. A turn that only started or stopped sessions does not wait: there the wait
//! saved nothing and cost call setup 7–11 % more CPU a call at 1 000 calls/s.
//!
//! A call is pinned to a worker by its trunk-side port pair ([`worker_of`]); call control
//! takes the agent-side pair from the same worker's share of the port range when one is
//! free, so a call's sockets are kept by one worker. Sockets of finished sessions stay bound
//! ([`BoundSockets`]); one kept by another worker (an extra leg's, whose pair is taken
//! without regard to the worker, or a pair reused on the other side of a later call) is
//! moved over: re-registered, not re-bound.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

use crate::bound_sockets::{BoundSockets, SocketHome};
use crate::port_pool::PortPair;
use crate::session::{ControlReceiver, MediaEvent, MediaSession, SessionConfig, SessionId};

/// How long a worker that runs out of work waits before it sleeps in its poller; what it
/// adds to a relayed packet's delay at most. 0.5 ms took 3–33 % off the CPU per relayed
/// packet at 250–1 000 calls and added 0.4 ms to the median one-way delay (1 ms saved little
/// more for twice the delay; docs/scaling.md). The mouth-to-ear budget is 150 ms (ITU-T
/// G.114); a phone's jitter buffer holds 20–60 ms.
pub const WAKE_UP_COALESCING: std::time::Duration = std::time::Duration::from_micros(500);

thread_local! {
    /// Whether this worker thread received media since it last ran out of work.
    static MEDIA_RECEIVED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Notes that a session on this thread received a packet.
pub(crate) fn note_media_received() {
    MEDIA_RECEIVED.with(|received| received.set(true));
}

/// Whether this thread received media since the last call, which starts the count again.
fn take_media_received() -> bool {
    MEDIA_RECEIVED.with(|received| received.replace(false))
}

/// A worker's runtime calls this when it runs out of work: after a turn that relayed media it
/// waits [`WAKE_UP_COALESCING`], so the next turn takes what arrived meanwhile at once.
fn coalesce_wake_ups() {
    if take_media_received() {
        std::thread::sleep(WAKE_UP_COALESCING);
    }
}

/// Most worker threads a configuration may ask for.
pub const MAX_WORKERS: usize = 64;

/// The worker count to use: the configured one, else one per core.
pub fn worker_count(configured: Option<usize>) -> usize {
    configured
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, MAX_WORKERS)
}

/// The worker that runs the sessions whose trunk side is `pair` (and keeps its sockets).
pub fn worker_of(pair: PortPair, workers: usize) -> usize {
    usize::from(pair.rtp() / 2) % workers.max(1)
}

/// One worker thread: its runtime's handle, the sessions waiting to be handed to it, and
/// what ends it.
struct Worker {
    handle: Handle,
    pending: Mutex<Vec<PendingStart>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The running media worker threads. Dropping this ends them (their sessions end without
/// a report: it happens at shutdown, after call control has stopped).
pub struct MediaWorkers {
    workers: Vec<Worker>,
    sockets: BoundSockets,
}

impl std::fmt::Debug for MediaWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaWorkers")
            .field("workers", &self.workers.len())
            .field("kept_sockets", &self.sockets.kept())
            .finish()
    }
}

/// The name of every worker thread (what `top -H` and /proc/<pid>/task/*/comm show).
pub const WORKER_THREAD_NAME: &str = "media-worker";

impl MediaWorkers {
    /// Starts `count` worker threads (at least one, at most [`MAX_WORKERS`]).
    pub fn start(count: usize) -> io::Result<MediaWorkers> {
        let count = count.clamp(1, MAX_WORKERS);
        let mut workers = Vec::with_capacity(count);
        for n in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                // Called each time the runtime finds no task to run, before it polls with a
                // timeout; work that arrives meanwhile is taken on the next turn.
                .on_thread_park(coalesce_wake_ups)
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(WORKER_THREAD_NAME.to_owned())
                .spawn(move || {
                    // Runs the sessions spawned onto this runtime until told to stop (or
                    // until the `MediaWorkers` is dropped, which drops the sender).
                    let _ = runtime.block_on(stopped);
                    tracing::debug!(worker = n, "media worker stopped");
                })?;
            workers.push(Worker {
                handle,
                pending: Mutex::new(Vec::new()),
                stop: Some(stop),
                thread: Some(thread),
            });
        }
        Ok(MediaWorkers {
            workers,
            sockets: BoundSockets::new(),
        })
    }

    /// Worker threads running.
    pub fn count(&self) -> usize {
        self.workers.len()
    }

    /// The sockets kept between calls (shared by the workers).
    pub fn sockets(&self) -> &BoundSockets {
        &self.sockets
    }

    /// A session for the worker of its trunk-side pair: the handle now, the session itself
    /// once [`MediaWorkers::flush_starts`] hands it to that worker, whose thread takes its
    /// sockets from those kept (or binds them) and runs it, so call control makes no system
    /// call for it. A session that cannot take its sockets reports
    /// [`MediaEvent::StartFailed`] (naming the pairs another process holds) as its only
    /// event. The configured ports must not be 0 (the handle's addresses are known before
    /// the sockets are) and should be held first ([`BoundSockets::hold`]).
    pub fn start_session(
        &self,
        config: SessionConfig,
        events: mpsc::UnboundedSender<(SessionId, MediaEvent)>,
    ) -> MediaSession {
        let n = worker_of(config.trunk_ports, self.workers.len());
        let (session, control) = MediaSession::ahead_of_sockets(&config);
        match self.workers.get(n) {
            Some(worker) => worker
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(PendingStart {
                    config,
                    control,
                    events,
                }),
            // `start` runs at least one worker and `worker_of` stays below their count; were
            // it otherwise, the call must still hear that its session will not run.
            None => {
                let failed = MediaEvent::StartFailed {
                    error: "no media worker".to_owned(),
                    busy: Vec::new(),
                };
                let _ = events.send((config.id, failed));
            }
        }
        session
    }

    /// Hands the sessions started since the last call to their workers: one hand-over (and
    /// at most one wake-up) per worker, however many sessions (call control calls this once
    /// per round of events; a wake-up per session was a system call each).
    pub fn flush_starts(&self) {
        for (n, worker) in self.workers.iter().enumerate() {
            let starts = std::mem::take(
                &mut *worker
                    .pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            if starts.is_empty() {
                continue;
            }
            let home = SocketHome::kept(self.sockets.clone(), n);
            worker.handle.spawn(async move {
                for start in starts {
                    start.run_here(home.clone());
                }
            });
        }
    }
}

/// A session handed out by [`MediaWorkers::start_session`] and not yet on its worker.
struct PendingStart {
    config: SessionConfig,
    control: ControlReceiver,
    events: mpsc::UnboundedSender<(SessionId, MediaEvent)>,
}

impl PendingStart {
    /// Takes the session's sockets and spawns it on the current runtime (its worker's:
    /// sockets are registered with the runtime current while they are taken), or reports
    /// why it could not start.
    fn run_here(self, home: SocketHome) {
        let PendingStart {
            config,
            control,
            events,
        } = self;
        let (id, ip, rtcp) = (config.id, config.bind_ip, config.rtcp);
        let pairs = [config.trunk_ports, config.agent_ports];
        match MediaSession::bind(config, events.clone(), home, control) {
            Ok((_, _, task)) => {
                tokio::spawn(task);
            }
            Err(error) => {
                let failed = MediaEvent::StartFailed {
                    error: error.to_string(),
                    busy: busy_pairs(ip, &pairs, rtcp),
                };
                let _ = events.send((id, failed));
            }
        }
    }
}

/// Which of `pairs` another socket holds now: the session that failed to start has dropped
/// the sockets it took and closed those kept on its ports, so a port that still refuses a
/// bind belongs to someone else (another process inside the configured RTP range).
fn busy_pairs(ip: IpAddr, pairs: &[PortPair], rtcp: bool) -> Vec<PortPair> {
    let taken = |port: u16| {
        std::net::UdpSocket::bind(SocketAddr::new(ip, port))
            .is_err_and(|error| error.kind() == io::ErrorKind::AddrInUse)
    };
    pairs
        .iter()
        .copied()
        .filter(|pair| taken(pair.rtp()) || (rtcp && taken(pair.rtcp())))
        .collect()
}

impl Drop for MediaWorkers {
    fn drop(&mut self) {
        // Closed while their runtimes still run, so each is deregistered from its poller.
        self.sockets.close_all();
        for worker in &mut self.workers {
            if let Some(stop) = worker.stop.take() {
                let _ = stop.send(());
            }
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::media_timeout::Leg;
    use crate::port_pool::PortPool;
    use crate::relay_core::LegConfig;
    use crate::session::SessionReport;
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    use tokio::net::UdpSocket;

    type Events = mpsc::UnboundedReceiver<(SessionId, MediaEvent)>;

    const WAIT: Duration = Duration::from_secs(10);
    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    async fn phone() -> UdpSocket {
        UdpSocket::bind((LOOPBACK, 0))
            .await
            .expect("bind test phone")
    }

    fn leg(peer: &UdpSocket) -> LegConfig {
        LegConfig {
            remote_rtp: peer.local_addr().ok(),
            codec: Some((Codec::Pcmu, 0)),
            ..LegConfig::default()
        }
    }

    fn config(ports: (PortPair, PortPair), trunk: LegConfig, agent: LegConfig) -> SessionConfig {
        SessionConfig {
            id: 7,
            bind_ip: LOOPBACK,
            trunk_ports: ports.0,
            agent_ports: ports.1,
            trunk,
            agent: Some(agent),
            media_timeout: None,
            relatch_after: Duration::from_secs(2),
            rtcp: true,
        }
    }

    /// Two pairs from a range no other test of this crate uses, held in the workers' store
    /// as call control holds them; a pair another process holds is skipped.
    fn held_ports(workers: &MediaWorkers, pool: &mut PortPool) -> (PortPair, PortPair) {
        let mut held = std::iter::from_fn(|| {
            let pair = pool.allocate().ok()?;
            Some(
                workers
                    .sockets()
                    .hold(LOOPBACK, pair)
                    .is_ok()
                    .then_some(pair),
            )
        })
        .flatten();
        let trunk = held.next().expect("test port range exhausted");
        let agent = held.next().expect("test port range exhausted");
        (trunk, agent)
    }

    /// Starts a session on `ports` and hands it to its worker.
    fn start(
        workers: &MediaWorkers,
        ports: (PortPair, PortPair),
        trunk: LegConfig,
        agent: LegConfig,
    ) -> (MediaSession, Events) {
        let (sink, events) = mpsc::unbounded_channel();
        let session = workers.start_session(config(ports, trunk, agent), sink);
        workers.flush_starts();
        (session, events)
    }

    fn start_first(
        workers: &MediaWorkers,
        pool: &mut PortPool,
        trunk: LegConfig,
        agent: LegConfig,
    ) -> (MediaSession, Events, (PortPair, PortPair)) {
        let ports = held_ports(workers, pool);
        let (session, events) = start(workers, ports, trunk, agent);
        (session, events, ports)
    }

    /// The test's own runtime: it only drives the test's phones and reads events; the
    /// sessions run on the workers.
    fn test_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("test runtime")
    }

    async fn next_event(events: &mut Events) -> MediaEvent {
        let (_, event) = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("event in time")
            .expect("sink open");
        event
    }

    async fn ended(events: &mut Events) -> SessionReport {
        loop {
            if let MediaEvent::Ended(report) = next_event(events).await {
                return report;
            }
        }
    }

    async fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buffer = vec![0u8; 2048];
        let (len, from) = tokio::time::timeout(WAIT, socket.recv_from(&mut buffer))
            .await
            .expect("packet in time")
            .expect("receive");
        buffer.truncate(len);
        (buffer, from)
    }

    fn rtp(seq: u16, payload: &[u8]) -> Vec<u8> {
        rtp_rs::RtpPacketBuilder::new()
            .payload_type(0)
            .ssrc(0xBEEF)
            .sequence(rtp_rs::Seq::from(seq))
            .timestamp(u32::from(seq) * 160)
            .payload(payload)
            .build()
            .expect("valid packet")
    }

    #[test]
    fn the_worker_count_is_the_configured_one_or_one_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(worker_count(None), cores.min(MAX_WORKERS));
        assert_eq!(worker_count(Some(3)), 3);
        assert_eq!(worker_count(Some(0)), 1);
        assert_eq!(worker_count(Some(1000)), MAX_WORKERS);
        let workers = MediaWorkers::start(3).expect("threads start");
        assert_eq!(workers.count(), 3);
    }

    #[test]
    fn only_a_turn_that_received_media_waits_before_the_worker_sleeps() {
        // A turn of starts and stops only (call setup) does not wait.
        assert!(!take_media_received());
        note_media_received();
        note_media_received();
        assert!(
            take_media_received(),
            "a turn that relayed media waits once"
        );
        assert!(!take_media_received(), "and the next turn starts afresh");
        // The mark is the thread's own: another worker's media does not make this one wait.
        std::thread::spawn(note_media_received)
            .join()
            .expect("thread ends");
        assert!(!take_media_received());
    }

    #[test]
    fn a_call_is_pinned_by_its_trunk_pair() {
        let pool = PortPool::new(20000, 20011).expect("six pairs");
        let mut pool = pool;
        let workers: Vec<usize> = (0..6)
            .map(|_| worker_of(pool.allocate().expect("free"), 2))
            .collect();
        assert_eq!(
            workers,
            vec![0, 1, 0, 1, 0, 1],
            "neighbouring pairs alternate"
        );
        assert_eq!(
            worker_of(pool_pair(20004), 1),
            0,
            "one worker runs everything"
        );
    }

    fn pool_pair(rtp: u16) -> PortPair {
        let mut pool = PortPool::new(rtp, rtp + 1).expect("one pair");
        pool.allocate().expect("free")
    }

    /// A session is started from a thread without any runtime of its own: it runs on a
    /// worker. When it ends its sockets stay bound, and the next session on the same ports
    /// takes them without binding; a datagram the previous call's peer sent in between is
    /// dropped, so it neither latches the new call's trunk leg nor reaches its agent.
    #[test]
    fn sockets_are_reused_by_the_next_call_and_its_stale_packets_dropped() {
        let workers = MediaWorkers::start(1).expect("threads start");
        let mut pool = PortPool::new(45000, 45999).expect("range");
        let runtime = test_runtime();
        runtime.block_on(async {
            let old_caller = phone().await;
            let agent = phone().await;
            let (first, mut events, ports) =
                start_first(&workers, &mut pool, leg(&old_caller), leg(&agent));
            let trunk_addr = first.trunk_addr();
            old_caller
                .send_to(&rtp(1, b"first call"), trunk_addr)
                .await
                .expect("send");
            let (relayed, _) = recv(&agent).await;
            assert!(relayed.ends_with(b"first call"));
            first.stop();
            let report = ended(&mut events).await;
            assert_eq!(report.trunk.forwarded, 1);
            let counters = workers.sockets().counters();
            assert_eq!(counters.bound.load(Ordering::Relaxed), 4);
            assert_eq!(workers.sockets().kept(), 4, "kept bound after the call");

            // The old caller has not heard the BYE yet and keeps sending.
            for seq in 2..5 {
                old_caller
                    .send_to(&rtp(seq, b"stale"), trunk_addr)
                    .await
                    .expect("send");
            }
            // Call control holds the pairs for the next call (dropping what waited in them),
            // then starts its session.
            for pair in [ports.0, ports.1] {
                workers.sockets().hold(LOOPBACK, pair).expect("kept");
            }
            assert_eq!(counters.stale_dropped.load(Ordering::Relaxed), 3);
            let new_caller = phone().await;
            let (second, mut events) = start(&workers, ports, leg(&new_caller), leg(&agent));
            assert_eq!(second.trunk_addr(), trunk_addr);
            // The new caller may send before the worker has taken the sockets: not lost.
            new_caller
                .send_to(&rtp(1, b"second call"), trunk_addr)
                .await
                .expect("send");
            let (relayed, from) = recv(&agent).await;
            assert!(
                relayed.ends_with(b"second call"),
                "the first packet the agent gets is the new caller's"
            );
            assert_eq!(from, second.agent_addr());
            assert_eq!(counters.reused.load(Ordering::Relaxed), 4);
            assert_eq!(
                counters.bound.load(Ordering::Relaxed),
                4,
                "nothing bound again"
            );
            assert_eq!(workers.sockets().kept(), 0);
            match next_event(&mut events).await {
                MediaEvent::Latched { leg, source } => {
                    assert_eq!(leg, Leg::Trunk);
                    assert_eq!(source, new_caller.local_addr().expect("bound"));
                }
                other => panic!("expected the trunk to latch, got {other:?}"),
            }
            second.stop();
            let report = ended(&mut events).await;
            assert_eq!(report.trunk.forwarded, 1, "only the new caller's packet");
            assert_eq!(
                report.trunk.dropped_foreign, 0,
                "the stale ones never arrived"
            );
            assert_eq!(report.trunk.latched, new_caller.local_addr().ok());
        });
    }

    /// A socket kept by one worker and needed by a session on another is moved there
    /// (re-registered, not re-bound) and relays from its new worker.
    #[test]
    fn a_socket_kept_by_another_worker_moves_to_the_new_sessions_worker() {
        let workers = MediaWorkers::start(2).expect("threads start");
        let mut pool = PortPool::new(44000, 44999).expect("range");
        let runtime = test_runtime();
        runtime.block_on(async {
            let caller = phone().await;
            let agent = phone().await;
            let (first, mut events, (trunk, agent_ports)) =
                start_first(&workers, &mut pool, leg(&caller), leg(&agent));
            first.stop();
            ended(&mut events).await;
            // Swapped: the old agent pair is now the trunk side, so the call runs on the
            // other worker of the two (neighbouring pairs alternate) or the same one.
            let swapped = (agent_ports, trunk);
            for pair in [swapped.0, swapped.1] {
                workers.sockets().hold(LOOPBACK, pair).expect("kept");
            }
            let (second, mut events) = start(&workers, swapped, leg(&caller), leg(&agent));
            caller
                .send_to(&rtp(1, b"moved"), second.trunk_addr())
                .await
                .expect("send");
            let (relayed, _) = recv(&agent).await;
            assert!(relayed.ends_with(b"moved"));
            let counters = workers.sockets().counters();
            let moved = counters.moved.load(Ordering::Relaxed);
            let reused = counters.reused.load(Ordering::Relaxed);
            assert_eq!(moved + reused, 4, "every socket came from the store");
            assert_eq!(
                moved > 0,
                worker_of(trunk, 2) != worker_of(agent_ports, 2),
                "moved exactly when the pairs belong to different workers"
            );
            second.stop();
            ended(&mut events).await;
        });
    }

    /// A port another process holds (the pair was not held first): the session reports
    /// `StartFailed` naming that pair as its only event, and nothing of it stays kept.
    #[test]
    fn a_session_that_cannot_bind_reports_the_pair_another_process_holds() {
        let workers = MediaWorkers::start(1).expect("threads start");
        let mut pool = PortPool::new(43000, 43999).expect("range");
        let (trunk, _agent) = held_ports(&workers, &mut pool);
        // Another process holds the RTCP port of a pair nobody held.
        let (busy, _squatter) = std::iter::from_fn(|| pool.allocate().ok())
            .find_map(|pair| {
                let squatter = std::net::UdpSocket::bind((LOOPBACK, pair.rtcp())).ok()?;
                Some((pair, squatter))
            })
            .expect("a pair to squat on");
        let runtime = test_runtime();
        runtime.block_on(async {
            let caller = phone().await;
            let (_session, mut events) =
                start(&workers, (trunk, busy), leg(&caller), LegConfig::default());
            match next_event(&mut events).await {
                MediaEvent::StartFailed { error, busy: pairs } => {
                    assert!(error.contains("in use"), "{error}");
                    assert_eq!(pairs, vec![busy]);
                }
                other => panic!("expected StartFailed, got {other:?}"),
            }
            assert_eq!(
                workers.sockets().kept(),
                2,
                "the session's kept sockets are closed, the other held pair stays"
            );
        });
        assert!(
            std::net::UdpSocket::bind((LOOPBACK, trunk.rtp())).is_ok(),
            "the failed session's trunk port was closed"
        );
    }
}
