//! RTP relay load test on loopback: N anchored calls, each fed 50 packets/s each way by a
//! generator, for a few seconds per N. Prints loss, one-way delay through the relay (p50,
//! p99, p99.9), added jitter (p99 − p50 of that delay), relay CPU and memory per call.
//!
//! `cargo bench -p switchboard-media --bench relay_load` (release build).
//! Env: `RELAY_BENCH_CALLS=100,500,1000,2000`, `RELAY_BENCH_SECS=3`, `RELAY_BENCH_THREADS=2`.
//!
//! Each call is a bridged [`MediaSession`] (no playback, no recording): the pure relay path.
//! The relay runs on its own runtime whose threads are named `relay-*`, the generator on
//! `loadgen-*`; CPU is read per thread from /proc, so the figure is the relay's alone even
//! though both share the machine's cores.

mod support;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{bind_loopback, thread_cpu_ticks};

use media::port_pool::PortPool;
use media::relay_core::LegConfig;
use media::session::{MediaEvent, MediaSession, SessionConfig, SessionId};
use rtp_rs::{RtpPacketBuilder, Seq};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

const PTIME: Duration = Duration::from_millis(20);

struct CallResult {
    sent: u64,
    received: u64,
    delays_us: Vec<u32>,
}

fn main() {
    let calls: Vec<usize> = std::env::var("RELAY_BENCH_CALLS")
        .unwrap_or_else(|_| "100,500,1000,2000".to_string())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let secs: u64 = std::env::var("RELAY_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let relay_threads: usize = std::env::var("RELAY_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);

    let relay_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(relay_threads)
        .thread_name("relay-worker")
        .enable_all()
        .build()
        .expect("relay runtime");
    let gen_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("loadgen-worker")
        .enable_all()
        .build()
        .expect("generator runtime");
    let mut pool = PortPool::new(20000, 29999).expect("port range");

    println!("RTP relay load, loopback, {secs} s per step, relay runtime {relay_threads} threads, {} CPUs", num_cpus());
    println!(
        "{:>6} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>9} {:>10}",
        "calls",
        "sent",
        "recv",
        "loss%",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "jitter+us",
        "relay cpu%",
        "gen cpu%",
        "KiB/call"
    );
    for &n in &calls {
        run_step(n, secs, &relay_rt, &gen_rt, &mut pool);
    }
}

fn run_step(
    n: usize,
    secs: u64,
    relay_rt: &tokio::runtime::Runtime,
    gen_rt: &tokio::runtime::Runtime,
    pool: &mut PortPool,
) {
    // Generator sockets first, so the relays can be given their addresses as if from SDP.
    let phones: Vec<(std::net::UdpSocket, std::net::UdpSocket)> =
        (0..n).map(|_| (bind_loopback(), bind_loopback())).collect();
    let rss_before = rss_bytes();
    let (sink, mut events) = mpsc::unbounded_channel::<(SessionId, MediaEvent)>();
    let mut relays = Vec::with_capacity(n);
    let mut pairs = Vec::with_capacity(2 * n);
    for (caller, agent) in &phones {
        let caller_addr = caller.local_addr().expect("addr");
        let agent_addr = agent.local_addr().expect("addr");
        let handle = loop {
            let (Ok(a), Ok(b)) = (pool.allocate(), pool.allocate()) else {
                panic!("port pool exhausted at {} calls", relays.len());
            };
            let config = SessionConfig {
                id: relays.len() as SessionId,
                bind_ip: "127.0.0.1".parse().expect("ip"),
                trunk_ports: a,
                agent_ports: b,
                trunk: LegConfig {
                    remote_rtp: Some(caller_addr),
                    ..LegConfig::default()
                },
                agent: Some(LegConfig {
                    remote_rtp: Some(agent_addr),
                    ..LegConfig::default()
                }),
                media_timeout: Some(Duration::from_secs(30)),
                relatch_after: Duration::from_secs(2),
                rtcp: true,
            };
            let _guard = relay_rt.enter();
            match MediaSession::start(config, sink.clone()) {
                Ok(handle) => {
                    pairs.push(a);
                    pairs.push(b);
                    break handle;
                }
                // Port taken by someone else on this machine: leave that pair out and retry.
                Err(_) => continue,
            }
        };
        relays.push(handle);
    }
    std::thread::sleep(Duration::from_millis(200));
    let rss_after = rss_bytes();

    let (stop_tx, stop_rx) = watch::channel(false);
    let epoch = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (i, ((caller, agent), relay)) in phones.into_iter().zip(&relays).enumerate() {
        let trunk_side = relay.trunk_addr();
        let agent_side = relay.agent_addr();
        let stop = stop_rx.clone();
        // Spread call phases over the 20 ms tick like real, unsynchronised phones.
        let phase = PTIME * (i as u32 % 20) / 20;
        let _guard = gen_rt.enter();
        let caller = UdpSocket::from_std(caller).expect("tokio socket");
        let agent = UdpSocket::from_std(agent).expect("tokio socket");
        tasks.push(gen_rt.spawn(phone_pair(
            caller, agent, trunk_side, agent_side, epoch, phase, secs, stop,
        )));
    }
    // Warm-up half a second, then measure CPU over the steady part.
    std::thread::sleep(Duration::from_millis(500));
    let cpu_start = thread_cpu_ticks();
    let wall_start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs).saturating_sub(Duration::from_millis(500)));
    let cpu_end = thread_cpu_ticks();
    let wall = wall_start.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);

    let mut sent = 0;
    let mut received = 0;
    let mut delays = Vec::new();
    for task in tasks {
        let result = gen_rt.block_on(task).expect("generator task");
        sent += result.sent;
        received += result.received;
        delays.extend(result.delays_us);
    }
    support::end_sessions(relay_rt, relays, &mut events, pool, pairs);
    delays.sort_unstable();
    let pct = |p: f64| -> u32 {
        if delays.is_empty() {
            return 0;
        }
        let index = ((delays.len() as f64 - 1.0) * p).round() as usize;
        delays[index.min(delays.len() - 1)]
    };
    let cpu = |name: &str| -> f64 {
        support::cores_used(&cpu_start, &cpu_end, name, Duration::from_secs_f64(wall)) * 100.0
    };
    let loss = if sent == 0 {
        0.0
    } else {
        (sent.saturating_sub(received)) as f64 / sent as f64 * 100.0
    };
    println!(
        "{:>6} {:>9} {:>9} {:>8.3} {:>8} {:>8} {:>9} {:>10} {:>10.1} {:>9.1} {:>10.1}",
        n,
        sent,
        received,
        loss,
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(0.99).saturating_sub(pct(0.50)),
        cpu("relay"),
        cpu("loadgen"),
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0 / n as f64,
    );
}

#[allow(clippy::too_many_arguments)]
async fn phone_pair(
    caller: UdpSocket,
    agent: UdpSocket,
    trunk_side: SocketAddr,
    agent_side: SocketAddr,
    epoch: Instant,
    phase: Duration,
    secs: u64,
    mut stop: watch::Receiver<bool>,
) -> CallResult {
    let mut result = CallResult {
        sent: 0,
        received: 0,
        delays_us: Vec::with_capacity(2 * 50 * secs as usize + 16),
    };
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + phase, PTIME);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut packet = [0u8; 172];
    let mut seq: u16 = 0;
    let mut caller_buf = [0u8; 2048];
    let mut agent_buf = [0u8; 2048];
    let mut sending = true;
    let mut drain_until = None;
    loop {
        tokio::select! {
            _ = interval.tick(), if sending => {
                for (socket, to) in [(&caller, trunk_side), (&agent, agent_side)] {
                    let stamp = epoch.elapsed().as_nanos() as u64;
                    let mut payload = [0u8; 160];
                    payload[..8].copy_from_slice(&stamp.to_be_bytes());
                    let len = RtpPacketBuilder::new()
                        .payload_type(0)
                        .ssrc(0x5EED)
                        .sequence(Seq::from(seq))
                        .timestamp(u32::from(seq) * 160)
                        .payload(&payload)
                        .build_into(&mut packet)
                        .unwrap_or(0);
                    if socket.send_to(&packet[..len], to).await.is_ok() {
                        result.sent += 1;
                    }
                }
                seq = seq.wrapping_add(1);
            }
            r = caller.recv_from(&mut caller_buf) => record(&mut result, r.ok().map(|(n, _)| &caller_buf[..n]), epoch),
            r = agent.recv_from(&mut agent_buf) => record(&mut result, r.ok().map(|(n, _)| &agent_buf[..n]), epoch),
            _ = stop.changed(), if sending => {
                sending = false;
                drain_until = Some(tokio::time::Instant::now() + Duration::from_millis(300));
            }
            _ = async { tokio::time::sleep_until(drain_until.unwrap_or_else(tokio::time::Instant::now)).await }, if drain_until.is_some() => break,
        }
    }
    result
}

fn record(result: &mut CallResult, datagram: Option<&[u8]>, epoch: Instant) {
    let now = epoch.elapsed().as_nanos() as u64;
    let Some(stamp) = datagram
        .and_then(|d| d.get(12..20))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
    else {
        return;
    };
    result.received += 1;
    let delay_us = now.saturating_sub(u64::from_be_bytes(stamp)) / 1000;
    result
        .delays_us
        .push(delay_us.min(u64::from(u32::MAX)) as u32);
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
