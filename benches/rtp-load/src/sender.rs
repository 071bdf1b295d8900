//! The one sender thread: every stream (each call, each direction) sends 50 packets a second
//! on a fixed schedule, the streams' phases spread evenly over the 20 ms period so the load
//! is smooth rather than one burst per period. The send time is stamped just before each
//! send, so lateness of the sender shifts packets but never inflates measured delay.
//!
//! A packet that is more than one period late when its turn comes is skipped, not sent: a
//! generator that cannot keep up then offers less load (counted, and visible as `skipped`)
//! instead of stretching the step past its S seconds with a backlog sent in bursts.

use std::time::Duration;

use crate::clock::MonotonicClock;
use crate::histogram::MicrosHistogram;
use crate::media_call::MediaCall;
use crate::probe_packet::{Direction, ProbeWriter};

/// A packet due less than this far in the future is sent now instead of sleeping for it: a
/// sleep costs a syscall and overshoots by the timer slack (about 50 µs) anyway.
const EARLY_NS: u64 = 25_000;

/// The packet schedule of the media phase.
#[derive(Debug, Clone, Copy)]
pub struct SendSchedule {
    /// Packet interval of every stream.
    pub period: Duration,
    /// Packets each stream sends.
    pub packets_per_stream: u32,
}

/// What the sender did.
#[derive(Debug, Clone, Default)]
pub struct SenderReport {
    /// Packets handed to the kernel, per direction.
    pub sent: [u64; 2],
    /// Sends the kernel refused, per direction.
    pub send_errors: [u64; 2],
    /// Packets not sent because the sender was more than one period behind, per direction.
    pub skipped: [u64; 2],
    /// How late each packet left against its schedule, µs.
    pub lateness: MicrosHistogram,
}

/// The nanosecond (since the first period's start) at which packet `n` of stream `stream`
/// (of `streams`) is due.
pub fn due_ns(n: u32, stream: usize, streams: usize, period_ns: u64) -> u64 {
    let phase = (stream as u64 * period_ns) / streams.max(1) as u64;
    u64::from(n) * period_ns + phase
}

/// Sends the whole schedule; returns when the last packet is out.
pub fn send(calls: &[MediaCall], schedule: SendSchedule, clock: &MonotonicClock) -> SenderReport {
    let mut report = SenderReport::default();
    let mut writer = ProbeWriter::default();
    let streams = calls.len() * 2;
    let period_ns = u64::try_from(schedule.period.as_nanos()).unwrap_or(u64::MAX);
    let start_ns = clock.now_ns();
    for n in 0..schedule.packets_per_stream {
        for (stream, (call, direction)) in calls
            .iter()
            .flat_map(|call| Direction::BOTH.map(|direction| (call, direction)))
            .enumerate()
        {
            let due = start_ns + due_ns(n, stream, streams, period_ns);
            let mut now = clock.now_ns();
            if due > now + EARLY_NS {
                std::thread::sleep(Duration::from_nanos(due - now));
                now = clock.now_ns();
            }
            let late_ns = now.saturating_sub(due);
            report.lateness.record(late_ns / 1_000);
            if late_ns > period_ns {
                report.skipped[direction.index()] += 1;
                continue;
            }
            let ssrc = 0x5000_0000 | stream as u32;
            let (socket, destination) = call.sender(direction);
            let datagram = writer
                .prepare(call.index, direction, n, ssrc)
                .stamp(clock.now_ns());
            match socket.send_to(datagram, destination) {
                Ok(_) => report.sent[direction.index()] += 1,
                Err(_) => report.send_errors[direction.index()] += 1,
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_spread_over_the_period() {
        let period = 20_000_000;
        // 4 streams: 0, 5, 10, 15 ms into each period.
        let phases: Vec<u64> = (0..4).map(|s| due_ns(0, s, 4, period)).collect();
        assert_eq!(phases, vec![0, 5_000_000, 10_000_000, 15_000_000]);
        assert_eq!(due_ns(3, 1, 4, period), 3 * period + 5_000_000);
        // Every phase stays inside the period however many streams there are.
        assert!(due_ns(0, 7999, 8000, period) < period);
    }
}
