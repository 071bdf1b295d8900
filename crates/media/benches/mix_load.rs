//! Mixing load test on loopback: N media sessions of three legs (trunk, agent and one extra
//! leg, as in a supervised call or a three-party conference), every leg sending 20 ms G.711
//! packets, the session mixing each listener's audio on its 20 ms tick. Prints, per mode, the
//! media runtime's CPU, the CPU time per 20 ms tick per session, and how many packets the
//! phones got back against what listeners should get (50 per second each). Mixes keep
//! sending encoded silence while the phones drain for 300 ms after they stop, so a mode that
//! mixes shows ~1.1 there; below 1.0 means packets were lost.
//!
//! `cargo bench -p switchboard-media --bench mix_load` (release build).
//! Env: `MIX_BENCH_SESSIONS=50,200,500`, `MIX_BENCH_SECS=3`, `MIX_BENCH_THREADS=2`,
//! `MIX_BENCH_MODES=relay,conference,whisper`.
//!
//! Modes: `relay` is today's byte-for-byte trunk⇄agent relay with the third leg present but
//! heard by nobody (the baseline); `conference` mixes everyone for everyone; `whisper` the
//! supervisor preset. The sessions run on their own runtime (threads `media-*`), the phones
//! on `loadgen-*`; CPU is read per thread from /proc, so the figure is the media plane's alone.

mod support;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{bind_loopback, thread_cpu_ticks};

use media::port_pool::PortPool;
use media::relay_core::LegConfig;
use media::routing::{self, Routing};
use media::session::{MediaCommand, MediaEvent, MediaSession, SessionConfig, SessionId};
use media::{Codec, Leg};
use rtp_rs::{RtpPacketBuilder, Seq};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

const PTIME: Duration = Duration::from_millis(20);
const SUPERVISOR: Leg = Leg::Extra(0);

fn main() {
    let env_list = |name: &str, default: &str| -> Vec<String> {
        std::env::var(name)
            .unwrap_or_else(|_| default.to_string())
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let sessions: Vec<usize> = env_list("MIX_BENCH_SESSIONS", "50,200,500")
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    let modes = env_list("MIX_BENCH_MODES", "relay,conference,whisper");
    let secs: u64 = std::env::var("MIX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let threads: usize = std::env::var("MIX_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let media_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("media-worker")
        .enable_all()
        .build()
        .expect("media runtime");
    let gen_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("loadgen-worker")
        .enable_all()
        .build()
        .expect("generator runtime");
    let mut pool = PortPool::new(30000, 39999).expect("port range");
    println!(
        "Mixing load, loopback, 3 legs a session, {secs} s per step, media runtime {threads} threads, {} CPUs",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "{:>11} {:>8} {:>10} {:>10} {:>12} {:>14} {:>12}",
        "mode", "sessions", "sent", "recv", "recv/expect", "media cpu%", "us/tick/sess"
    );
    for mode in &modes {
        let routing = match mode.as_str() {
            "relay" => Routing::Relay,
            "conference" => routing::conference(&[Leg::Trunk, Leg::Agent, SUPERVISOR]),
            "whisper" => routing::whisper(Leg::Trunk, Leg::Agent, SUPERVISOR),
            other => {
                eprintln!("unknown mode {other}: relay, conference or whisper");
                continue;
            }
        };
        for &n in &sessions {
            run_step(mode, &routing, n, secs, &media_rt, &gen_rt, &mut pool);
        }
    }
}

fn pcmu(remote: SocketAddr) -> LegConfig {
    LegConfig {
        remote_rtp: Some(remote),
        codec: Some((Codec::Pcmu, 0)),
        telephone_event: Some(101),
        ..LegConfig::default()
    }
}

fn run_step(
    mode: &str,
    routing: &Routing,
    n: usize,
    secs: u64,
    media_rt: &tokio::runtime::Runtime,
    gen_rt: &tokio::runtime::Runtime,
    pool: &mut PortPool,
) {
    let phones: Vec<[std::net::UdpSocket; 3]> = (0..n)
        .map(|_| [bind_loopback(), bind_loopback(), bind_loopback()])
        .collect();
    let (sink, mut events) = mpsc::unbounded_channel::<(SessionId, MediaEvent)>();
    let mut sessions = Vec::with_capacity(n);
    let mut pairs = Vec::new();
    for legs in &phones {
        let addr = |i: usize| legs[i].local_addr().expect("addr");
        let session = loop {
            let (Ok(a), Ok(b)) = (pool.allocate(), pool.allocate()) else {
                panic!("port pool exhausted at {} sessions", sessions.len());
            };
            let config = SessionConfig {
                id: sessions.len() as SessionId,
                bind_ip: "127.0.0.1".parse().expect("ip"),
                trunk_ports: a,
                agent_ports: b,
                trunk: pcmu(addr(0)),
                agent: Some(pcmu(addr(1))),
                media_timeout: Some(Duration::from_secs(30)),
                relatch_after: Duration::from_secs(2),
                rtcp: true,
            };
            let _guard = media_rt.enter();
            match MediaSession::start(config, sink.clone()) {
                Ok(session) => {
                    pairs.extend([a, b]);
                    break session;
                }
                Err(_) => continue, // a port taken by another process: leave it out
            }
        };
        sessions.push(session);
    }
    // Add the third leg to every session; a taken port is answered by an event: try another.
    let mut extra_addrs: Vec<Option<SocketAddr>> = vec![None; n];
    let add = |session: &MediaSession, pool: &mut PortPool, pairs: &mut Vec<_>, remote| {
        let ports = pool.allocate().expect("port pool has room");
        pairs.push(ports);
        session.command(MediaCommand::AddLeg {
            leg: SUPERVISOR,
            ports,
            config: pcmu(remote),
        });
    };
    for (session, legs) in sessions.iter().zip(&phones) {
        add(
            session,
            pool,
            &mut pairs,
            legs[2].local_addr().expect("addr"),
        );
        session.command(MediaCommand::SetRouting(routing.clone()));
    }
    media_rt.block_on(async {
        let mut added = 0;
        while added < n {
            match events.recv().await {
                Some((id, MediaEvent::LegAdded { local_rtp, .. })) => {
                    extra_addrs[id as usize] = Some(local_rtp);
                    added += 1;
                }
                Some((id, MediaEvent::AddLegFailed { .. })) => {
                    let id = id as usize;
                    let remote = phones[id][2].local_addr().expect("addr");
                    add(&sessions[id], pool, &mut pairs, remote);
                }
                Some(_) => {}
                None => break,
            }
        }
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::with_capacity(n);
    for (i, (legs, session)) in phones.into_iter().zip(&sessions).enumerate() {
        let targets = [
            session.trunk_addr(),
            session.agent_addr(),
            extra_addrs[i].expect("every extra leg added"),
        ];
        let phase = PTIME * (i as u32 % 20) / 20;
        let _guard = gen_rt.enter();
        let sockets = legs.map(|socket| UdpSocket::from_std(socket).expect("tokio socket"));
        tasks.push(gen_rt.spawn(phones_of_one_session(
            sockets,
            targets,
            phase,
            stop_rx.clone(),
        )));
    }
    std::thread::sleep(Duration::from_millis(500));
    let cpu_start = thread_cpu_ticks();
    let wall_start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs).saturating_sub(Duration::from_millis(500)));
    let cpu_end = thread_cpu_ticks();
    let wall = wall_start.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let (mut sent, mut received) = (0u64, 0u64);
    for task in tasks {
        let (s, r) = gen_rt.block_on(task).expect("generator task");
        sent += s;
        received += r;
    }
    support::end_sessions(media_rt, sessions, &mut events, pool, pairs);
    let media_cpu =
        support::cores_used(&cpu_start, &cpu_end, "media", Duration::from_secs_f64(wall));
    let ticks = wall / PTIME.as_secs_f64();
    // Listeners per session that get audio: 2 in relay (the extra leg hears nobody), else 3.
    let listeners = if mode == "relay" { 2.0 } else { 3.0 };
    let expected = sent as f64 / 3.0 * listeners;
    println!(
        "{:>11} {:>8} {:>10} {:>10} {:>12.3} {:>14.1} {:>12.1}",
        mode,
        n,
        sent,
        received,
        received as f64 / expected.max(1.0),
        media_cpu * 100.0,
        media_cpu / ticks / n as f64 * 1e6,
    );
}

/// The three phones of one session: each sends a 20 ms packet per tick and counts what it
/// receives, until told to stop (then drains for 300 ms).
async fn phones_of_one_session(
    sockets: [UdpSocket; 3],
    targets: [SocketAddr; 3],
    phase: Duration,
    mut stop: watch::Receiver<bool>,
) -> (u64, u64) {
    let (mut sent, mut received) = (0u64, 0u64);
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + phase, PTIME);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut packet = [0u8; 172];
    let mut seq: u16 = 0;
    let mut buffers = [[0u8; 2048]; 3];
    let mut sending = true;
    let mut drain_until = None;
    loop {
        let [b0, b1, b2] = &mut buffers;
        tokio::select! {
            _ = interval.tick(), if sending => {
                for (leg, (socket, to)) in sockets.iter().zip(targets).enumerate() {
                    // A different, speech-like level per leg so the mix is not trivially zero.
                    let payload = [0x20u8.wrapping_add(leg as u8 * 16).wrapping_add(seq as u8 % 7); 160];
                    let len = RtpPacketBuilder::new()
                        .payload_type(0)
                        .ssrc(0x5EED + leg as u32)
                        .sequence(Seq::from(seq))
                        .timestamp(u32::from(seq) * 160)
                        .payload(&payload)
                        .build_into(&mut packet)
                        .unwrap_or(0);
                    if socket.send_to(&packet[..len], to).await.is_ok() {
                        sent += 1;
                    }
                }
                seq = seq.wrapping_add(1);
            }
            r = sockets[0].recv_from(b0) => received += u64::from(r.is_ok()),
            r = sockets[1].recv_from(b1) => received += u64::from(r.is_ok()),
            r = sockets[2].recv_from(b2) => received += u64::from(r.is_ok()),
            _ = stop.changed(), if sending => {
                sending = false;
                drain_until = Some(tokio::time::Instant::now() + Duration::from_millis(300));
            }
            _ = async { tokio::time::sleep_until(drain_until.unwrap_or_else(tokio::time::Instant::now)).await }, if drain_until.is_some() => break,
        }
    }
    (sent, received)
}
