//! What the media load benchmarks share: loopback sockets for the generated phones, per-thread
//! CPU read from /proc (so the figure is the media threads' alone, although the generator runs
//! on the same cores), and ending a step's sessions before their ports are reused.

use std::time::Duration;

use media::port_pool::{PortPair, PortPool};
use media::session::{MediaEvent, MediaSession, SessionId};
use tokio::sync::mpsc;

/// A non-blocking UDP socket on 127.0.0.1 at a free port.
pub fn bind_loopback() -> std::net::UdpSocket {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind loopback");
    socket.set_nonblocking(true).expect("nonblocking");
    socket
}

/// (thread name, utime + stime in clock ticks) for every thread of this process.
pub fn thread_cpu_ticks() -> Vec<(String, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|entry| {
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // comm is in parentheses and may hold spaces; fields after it are space-separated.
            let open = stat.find('(')?;
            let close = stat.rfind(')')?;
            let comm = stat.get(open + 1..close)?.to_string();
            let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some((comm, utime + stime))
        })
        .collect()
}

/// Cores used (1.0 = one core busy) by the threads whose names start with `prefix`, between
/// two [`thread_cpu_ticks`] samples `wall` apart.
pub fn cores_used(
    start: &[(String, u64)],
    end: &[(String, u64)],
    prefix: &str,
    wall: Duration,
) -> f64 {
    let sum = |ticks: &[(String, u64)]| -> u64 {
        ticks
            .iter()
            .filter(|(comm, _)| comm.starts_with(prefix))
            .map(|(_, t)| t)
            .sum()
    };
    // USER_HZ is 100 on every Linux this runs on; sysconf would need libc for one constant.
    sum(end).saturating_sub(sum(start)) as f64 / 100.0 / wall.as_secs_f64()
}

/// Stops every session, waits until each has reported `Ended` (its sockets are closed then)
/// and gives the ports back to the pool.
pub fn end_sessions(
    runtime: &tokio::runtime::Runtime,
    sessions: Vec<MediaSession>,
    events: &mut mpsc::UnboundedReceiver<(SessionId, MediaEvent)>,
    pool: &mut PortPool,
    pairs: Vec<PortPair>,
) {
    for session in &sessions {
        session.stop();
    }
    runtime.block_on(async {
        let mut ended = 0;
        while ended < sessions.len() {
            match events.recv().await {
                Some((_, MediaEvent::Ended(_))) => ended += 1,
                Some(_) => {}
                None => break,
            }
        }
    });
    drop(sessions);
    for pair in pairs {
        let _ = pool.release(pair);
    }
}
